package policies

import (
	"errors"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// evalContext is the context expressions in configuration files are
// evaluated in: functions only, no variables (referencing one is an error
// that HCL reports with its position).
func evalContext(getenv func(string) string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env": envFunc(getenv),
		},
	}
}

// envFunc is env("NAME"): the value of the environment variable NAME, or ""
// when it is not set. It keeps secrets such as API keys and tokens out of
// configuration files.
func envFunc(getenv func(string) string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or an empty string when it is not set.",
		Params: []function.Parameter{
			{Name: "name", Type: cty.String},
		},
		Type: function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(getenv(args[0].AsString())), nil
		},
	})
}

// policyEvalContext is the context of policies from Consul KV: env() is
// there only to say that it is not available. Whoever can write the policy
// prefix reaches every sidecar, and must not be able to read their
// environment (a model's api_key = env("…") with a base_url of their own
// choosing would send it to them).
func policyEvalContext() *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env": function.New(&function.Spec{
				Params: []function.Parameter{{Name: "name", Type: cty.String, AllowUnknown: true, AllowNull: true}},
				Type:   function.StaticReturnType(cty.String),
				Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
					return cty.NilVal, errEnvInPolicy
				},
			}),
		},
	}
}

var errEnvInPolicy = errors.New("env() is only allowed in local files: a policy from Consul KV cannot read the " +
	"environment of the sidecars it reaches; define the block that needs a secret in each sidecar's local file")
