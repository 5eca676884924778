package policies

import (
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
