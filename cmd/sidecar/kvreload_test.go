//go:build e2e

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/agent-sidecar/sidecar/internal/consultest"
	"github.com/agent-sidecar/sidecar/internal/testutil"
)

// reloadAnswer is the answer of POST /v1/reload, either a ReloadInfo or an
// error.
type reloadAnswer struct {
	OK               bool     `json:"ok"`
	Error            string   `json:"error"`
	PoliciesRejected bool     `json:"policies_rejected"`
	Sources          []string `json:"sources"`
}

func postReload(t *testing.T, control string) (int, reloadAnswer, string) {
	t.Helper()
	resp, err := http.Post(control+"/v1/reload", "application/json", nil)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans reloadAnswer
	_ = json.Unmarshal(body, &ans)
	return resp.StatusCode, ans, string(body)
}

// While the fleet policies in Consul KV are rejected, a reload still applies
// a change of the local files, over the last good policies (over none when
// no policy was ever good, as after a start on bad policies), and keeps
// saying why the policies are rejected; a bad local file is rejected whole;
// valid policies apply again once they arrive.
func TestLocalReloadAppliesWhileKVPoliciesRejected(t *testing.T) {
	consul := consultest.Start(t)
	client := consul.Client(t)
	putKV(t, client, "sidecar/policies/breakers.hcl", "breaker \"strict\" {\n  consecutive_failures = 7\n}\n")

	port := testutil.FreePort(t)
	dir := t.TempDir()
	local := func(failures int, openFor string) string {
		return writeFile(t, dir, "sidecar.hcl", kvPolicyConfig("writer-reload", port, consul.HTTPAddr)+fmt.Sprintf(`breaker "default" {
  consecutive_failures = %d
  open_for             = %q
}
`, failures, openFor))
	}
	file := local(3, "30s")
	control, sidecar := startHealthySidecar(t, "sidecar", file, port)
	if st, body := readStatus(t, control); st.Config.Breakers["strict"].ConsecutiveFailures != 7 {
		t.Fatalf("the fleet policy is not applied at start: %s", body)
	}

	// A bad change of the policies: rejected, the good layer stays.
	putKV(t, client, "sidecar/policies/breakers.hcl", "breaker \"strict\" {\n  consecutive_failures = 8\n}\n"+
		"breaker \"broken\" {\n  open_for = \"soon\"\n}\n")
	testutil.Eventually(t, "the bad policy rejected", 10*time.Second, func() bool {
		st, _ := readStatus(t, control)
		return st.LastReload != nil && !st.LastReload.OK && strings.Contains(st.LastReload.Error, "consul:sidecar/policies/breakers.hcl:5:")
	})

	policyRejected := func(what string, failures, strict float64) {
		t.Helper()
		st, body := readStatus(t, control)
		if got := st.Config.Breakers["default"].ConsecutiveFailures; got != failures {
			t.Fatalf("%s: the local change is not applied: default breaker %v, want %v", what, got, failures)
		}
		if got := st.Config.Breakers["strict"].ConsecutiveFailures; got != strict {
			t.Fatalf("%s: strict breaker %v, want %v (the last good policies; 0: none)", what, got, strict)
		}
		if _, ok := st.Config.Breakers["broken"]; ok {
			t.Fatalf("%s: the rejected policy's breaker is in force", what)
		}
		if st.LastReload == nil || st.LastReload.OK ||
			!strings.Contains(st.LastReload.Error, "consul:sidecar/policies/breakers.hcl:5:") ||
			!strings.Contains(st.LastReload.Error, "open_for") ||
			!strings.Contains(body, `"policies_rejected":true`) {
			t.Fatalf("%s: status does not say the policies are rejected and why: %s", what, body)
		}
		rejected := false
		for _, e := range st.Events {
			rejected = rejected || (e.Type == "config.rejected" && strings.Contains(e.Text, "local files were applied") &&
				strings.Contains(e.Text, "consul:sidecar/policies/breakers.hcl:5:"))
		}
		if !rejected {
			t.Fatalf("%s: no config.rejected event about the policies: %+v", what, st.Events)
		}
		testutil.Eventually(t, "the sidecar check to warn", 10*time.Second, func() bool {
			checks, _ := client.Agent().Checks()
			c := checks["writer-reload:sidecar"]
			return c != nil && c.Status == api.HealthWarning && strings.Contains(c.Output, "consul:sidecar/policies/breakers.hcl:5:")
		})
	}

	// A local change is applied over the last good policies.
	local(5, "45s")
	code, ans, body := postReload(t, control)
	if code != http.StatusOK || ans.OK || !ans.PoliciesRejected || !strings.Contains(ans.Error, "open_for") {
		t.Fatalf("reload of a local change while the policies are rejected: %d %s", code, body)
	}
	policyRejected("local change", 5, 7)

	// A bad local file is rejected whole, with the policies' errors as
	// well; the running configuration stays.
	local(6, "never")
	code, _, body = postReload(t, control)
	if code != http.StatusBadRequest || !strings.Contains(body, file+":14:") ||
		!strings.Contains(body, "consul:sidecar/policies/breakers.hcl:5:") {
		t.Fatalf("reload of a bad local file: %d %s", code, body)
	}
	if st, _ := readStatus(t, control); st.Config.Breakers["default"].ConsecutiveFailures != 5 {
		t.Fatalf("a bad local file changed the configuration: %+v", st.Config.Breakers)
	}

	// After a restart on the bad policies, a local change applies over no
	// policies.
	local(4, "30s")
	sidecar.stop()
	control, _ = startHealthySidecar(t, "sidecar", file, port)
	local(2, "30s")
	if code, ans, body = postReload(t, control); code != http.StatusOK || !ans.PoliciesRejected {
		t.Fatalf("reload of a local change after a start on rejected policies: %d %s", code, body)
	}
	policyRejected("after a start on rejected policies", 2, 0)

	// Fixing the policies applies them.
	putKV(t, client, "sidecar/policies/breakers.hcl", "breaker \"strict\" {\n  consecutive_failures = 8\n}\n")
	testutil.Eventually(t, "the fixed policy applied", 10*time.Second, func() bool {
		st, _ := readStatus(t, control)
		return st.Config.Breakers["strict"].ConsecutiveFailures == 8 && st.LastReload != nil && st.LastReload.OK &&
			st.Config.Breakers["default"].ConsecutiveFailures == 2
	})
	testutil.Eventually(t, "the sidecar check passing", 10*time.Second, func() bool {
		checks, _ := client.Agent().Checks()
		c := checks["writer-reload:sidecar"]
		return c != nil && c.Status == api.HealthPassing
	})
}
