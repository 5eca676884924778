package gateway

import "testing"

// FuzzUsage feeds arbitrary answers and events to the usage readers of
// every kind: no panic, and every count within [0, maxReported].
func FuzzUsage(f *testing.F) {
	for _, seed := range []string{
		`{"usage":` + openAIUsageJSON + `}`,
		`{"usage":` + responsesUsageOut + `}`,
		`{"usage":` + anthropicUsageOut + `}`,
		`{"type":"message_start","message":{"usage":{"input_tokens":-5,"output_tokens":1e300}}}`,
		`{"type":"response.completed","response":{"usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":9}}}}`,
		`{"choices":[],"usage":{"prompt_tokens":"x","completion_tokens":[1]}}`,
		`{"usage":{"prompt_tokens":1}` + "\x00",
		`  {"usage":null}`,
		`[[[[[[[[`,
	} {
		f.Add([]byte(seed), "")
		f.Add([]byte(seed), "message_delta")
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		check := func(u Usage) {
			for _, n := range []int64{u.Input, u.Output, u.CachedInput, u.CacheWrite} {
				if n < 0 || n > maxReported {
					t.Fatalf("a count out of bounds: %+v from %q", u, data)
				}
			}
		}
		for _, kind := range []string{kindChat, kindCompletion, kindEmbedding, kindResponse, kindMessage, kindCount} {
			u, _ := wholeUsage(kind, data)
			check(u)
			s := streamUsage{kind: kind}
			s.see(event{name: name, data: data})
			s.see(event{data: data})
			check(s.u)
		}
	})
}
