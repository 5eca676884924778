package translate

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestErrorBody checks that an upstream error reaches the agent in its own
// provider's shape, with the upstream message and a type for its status.
func TestErrorBody(t *testing.T) {
	tests := []struct {
		name     string
		d        Direction
		status   int
		body     string
		want     string
		contains string // for messages describing a body that is not an error
	}{
		{"Anthropic rate limit to OpenAI", ChatToAnthropic, 429,
			`{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
			`{"error":{"message":"Number of request tokens has exceeded your per-minute rate limit","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`, ""},
		{"Anthropic invalid request to OpenAI", ChatToAnthropic, 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate between \"user\" and \"assistant\""}}`,
			`{"error":{"message":"messages: roles must alternate between \"user\" and \"assistant\"","type":"invalid_request_error","param":null,"code":null}}`, ""},
		{"Anthropic overloaded to OpenAI", ChatToAnthropic, 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			`{"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}`, ""},
		{"Anthropic authentication to OpenAI", ChatToAnthropic, 401,
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`,
			`{"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":"invalid_api_key"}}`, ""},
		{"Anthropic model not found to OpenAI", ChatToAnthropic, 404,
			`{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`,
			`{"error":{"message":"model: claude-x","type":"not_found_error","param":null,"code":"model_not_found"}}`, ""},
		{"OpenAI rate limit to Anthropic", MessagesToOpenAI, 429,
			`{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 500.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			`{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 500."}}`, ""},
		{"OpenAI context length to Anthropic", MessagesToOpenAI, 400,
			`{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			`{"type":"error","error":{"type":"invalid_request_error","message":"This model's maximum context length is 128000 tokens."}}`, ""},
		{"OpenAI server error to Anthropic", MessagesToOpenAI, 500,
			`{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`,
			`{"type":"error","error":{"type":"api_error","message":"The server had an error while processing your request. Sorry about that!"}}`, ""},
		{"OpenAI 403 to Anthropic", MessagesToOpenAI, 403, `{"error":{"message":"Country not supported","type":"invalid_request_error","code":"unsupported_country_region_territory"}}`,
			`{"type":"error","error":{"type":"permission_error","message":"Country not supported"}}`, ""},
		{"OpenAI 413 to Anthropic", MessagesToOpenAI, 413, `{"error":{"message":"Request too large"}}`,
			`{"type":"error","error":{"type":"request_too_large","message":"Request too large"}}`, ""},
		{"OpenAI 503 to Anthropic", MessagesToOpenAI, 503, `{"error":{"message":"Slow down"}}`,
			`{"type":"error","error":{"type":"overloaded_error","message":"Slow down"}}`, ""},
		{"OpenAI 504 to Anthropic", MessagesToOpenAI, 504, `{"error":{"message":"Timed out"}}`,
			`{"type":"error","error":{"type":"timeout_error","message":"Timed out"}}`, ""},
		{"an error string", MessagesToOpenAI, 400, `{"error":"bad things"}`,
			`{"type":"error","error":{"type":"invalid_request_error","message":"bad things"}}`, ""},
		{"a top-level message", ChatToAnthropic, 502, `{"message":"upstream timed out"}`,
			`{"error":{"message":"upstream timed out","type":"server_error","param":null,"code":null}}`, ""},
		{"an HTML page", ChatToAnthropic, 502, "<html><head><title>502 Bad Gateway</title></head></html>", "",
			`the anthropic model answered with status 502 and a body that is not an error object: "<html><head><title>502 Bad Gateway</title></head></html>"`},
		{"an empty body", MessagesToOpenAI, 503, "", "", `the openai model answered with status 503 and an empty body`},
		{"a long body is cut", MessagesToOpenAI, 500, strings.Repeat("é", 300), "", `"` + strings.Repeat("é", 100) + `…"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.d.Error(tc.status, []byte(tc.body)))
			if tc.want != "" && got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if msg := gjson.Get(got, "error.message").Str; tc.contains != "" && !strings.Contains(msg, tc.contains) {
				t.Errorf("message %s\nwant it to say %s", msg, tc.contains)
			}
		})
	}
}
