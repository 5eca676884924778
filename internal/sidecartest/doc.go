// Package sidecartest holds fixtures shared by the tests of the sidecar
// packages (sidecar, sidecar/proxy, sidecar/guard, sidecar/gateway): a
// scriptable upstream, a fake discovery, an httpexpect client that leaves
// nothing running, raw connections and breaker settings.
//
// Only tests import it; product code must not (TestOnlyTestsImportIt). It
// is not part of internal/testutil because discovery's tests import
// testutil, and these fixtures import discovery.
package sidecartest
