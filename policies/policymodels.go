package policies

import (
	"sort"
)

// policyBlocks returns the labelled blocks that came from the first n
// layers: the policies from Consul KV.
func (w *walker) policyBlocks(n int) map[string]bool {
	out := map[string]bool{}
	for key, layer := range w.layers {
		if layer < n {
			out[key] = true
		}
	}
	return out
}

// policyModels refuses a model from Consul KV that answers to a name a local
// model answers to (its label, or its name sent upstream). A request names
// a model by either; were a policy's model to take the request, the
// agent's request (and with it the agent's own credentials) would go to a
// host the local files never named. A policy's block with the same label as
// a local one is not a collision: the local block replaces it whole, with
// its base_url, key and headers.
func (v *validator) policyModels(models map[string]*modelFile) {
	if len(v.pos.policy) == 0 {
		return
	}
	type local struct{ label, what string }
	answers := map[string]local{} // a name a local model answers to → that model
	var labels []string
	for label := range models {
		labels = append(labels, label)
	}
	sort.Strings(labels)
	for _, label := range labels {
		if v.pos.policy["model."+label] {
			continue
		}
		answers[label] = local{label, "label"}
		if n := models[label].Name; n != nil && *n != label {
			if _, taken := answers[*n]; !taken {
				answers[*n] = local{label, "name"}
			}
		}
	}
	for _, label := range labels {
		if !v.pos.policy["model."+label] {
			continue
		}
		key := "model." + label
		check := func(key, name, how string) bool {
			l, ok := answers[name]
			if !ok {
				return false
			}
			v.errorf(key, "%s %q is the %s of the local model %q (at %s): a model from Consul KV may not answer to a "+
				"name a local model answers to, so requests for it (and the agent's credentials) cannot be sent "+
				"elsewhere; give the policy's model another %s", how, name, l.what, l.label,
				rangeString(v.pos.ranges["model."+l.label]), how)
			return true
		}
		if !check(key, label, "label") {
			if n := models[label].Name; n != nil && *n != label {
				check(key+".name", *n, "name")
			}
		}
	}
}
