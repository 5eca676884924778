package policies

import (
	"slices"
	"strings"
	"testing"
)

func TestExecPassEnv(t *testing.T) {
	clearConsulEnv(t)
	cfg, err := Load(writeFile(t, "ok.hcl", `agent {
  name = "writer"
  exec {
    command  = ["python3", "agent.py"]
    pass_env = ["HTTPS_PROXY", "MYAGENT_*"]
  }
}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Agent.Exec.PassEnv; !slices.Equal(got, []string{"HTTPS_PROXY", "MYAGENT_*"}) {
		t.Fatalf("pass_env %q", got)
	}

	for _, tc := range []struct{ entry, want string }{
		{"*", `"*" would pass every variable`},
		{"MY AGENT", `"MY AGENT" is not a variable name`},
		{"A*B", `"A*B" is not a variable name`},
		{"1ST", `"1ST" is not a variable name`},
	} {
		diags := loadDiagnostics(t, writeFile(t, "bad.hcl", `agent {
  name = "writer"
  exec {
    command  = ["python3", "agent.py"]
    pass_env = ["`+tc.entry+`"]
  }
}`))
		if len(diags) != 1 || diags[0].Key != "agent.exec.pass_env" || !strings.Contains(diags[0].Message, tc.want) || diags[0].Line != 5 {
			t.Errorf("pass_env %q: got %v, want one error at agent.exec.pass_env line 5 saying %s", tc.entry, diags, tc.want)
		}
	}
}
