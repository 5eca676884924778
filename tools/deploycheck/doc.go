// Package deploycheck holds the test of the Kubernetes manifests in
// deploy/kubernetes. There is no cluster here: the test decodes every
// manifest strictly into the k8s.io/api types (an unknown or misspelled
// field fails, as it would with kubectl's strict field validation) and
// checks the wiring between the pieces: the agent's probes point at the
// sidecar's agent probes on the port its sidecar.hcl listens on, every
// env("…") of the sidecar.hcl in the ConfigMap is given to the sidecar from
// the downward API or the Secret, nothing secret is written in the
// ConfigMap, and the grace period outlasts the sidecar's shutdown.
//
// It lives in the tools module so that k8s.io/api stays out of the
// product's go.mod.
package deploycheck
