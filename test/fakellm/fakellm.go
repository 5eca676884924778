// Package fakellm is a fake model server for tests, benchmarks and demos. It
// answers the OpenAI (chat completions, legacy completions, embeddings,
// Responses API, models) and Anthropic (Messages) endpoints at the
// providers' own paths, plain and streaming, in shapes the official SDKs
// parse, and injects failures on demand: error statuses (every call, a
// number of calls, or a share of them), out of quota, rate limits with
// their headers, prompts beyond a context window, latency, stalls before
// the first byte, streams cut midway, connection resets, empty answers,
// text that is not the JSON that was asked for and answers nested too deep.
//
// Chat completion and Messages requests are checked as strictly as the
// real APIs check them (validate_openai.go, validate_anthropic.go): a
// request the API would refuse gets the provider's own 400, counted in
// Stats.BadRequests, with the reason in Last().Rejected. A request with
// tools that ends with the user's turn is answered with a call to one of
// them; one that ends with tool results, with the reply quoting the first
// (tools.go).
//
// A *Server is an http.Handler:
//
//	model := httptest.NewServer(fakellm.New(fakellm.Options{Reply: "hi"}))
//	defer model.Close()
//	// OpenAI SDKs: base URL model.URL + "/v1"; Anthropic SDKs: model.URL
//
// Faults are changed at run time with Set and Heal, or over HTTP with
// POST /_control and POST /_heal; GET /_stats counts the calls and GET
// /_last shows the last one as it arrived.
package fakellm

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultReply is what completions answer unless Options.Reply says
	// otherwise.
	DefaultReply = "Hello from fakellm."
	// DefaultModel is always listed by GET /v1/models.
	DefaultModel = "fake-model"
	// DefaultFailStatus is the status of injected failures when
	// Faults.FailStatus is 0.
	DefaultFailStatus = http.StatusInternalServerError
)

// Options configure a Server.
type Options struct {
	// Name labels the server in its log lines and in Stats (for example the
	// model it stands in for, "gpt-4o").
	Name string
	// Reply is the text completions answer; DefaultReply when empty. When a
	// request asks for JSON, the answer is Reply itself if it is a JSON
	// object, else {"answer":Reply}.
	Reply string
	// Faults are injected from the start.
	Faults Faults
	// Seed makes FailRate's draws repeatable: two servers with the same
	// seed fail the same calls. 0 picks a random seed.
	Seed uint64
	// Logf, when set, receives one line per request: method, path, model,
	// status and the fault injected.
	Logf func(format string, args ...any)
}

// Faults are the failures a Server injects. The zero value injects none.
// They apply to every API call (not to the /_ control endpoints) and are
// checked in this order: Stall and Latency delay the call; then Reset, a
// failure from FailNext or FailRate, the 400 of an invalid request, the
// 400 of a prompt beyond ContextLimit, a Nested body, or an answer (cut
// short by CutAfter, slowed by EventDelay, made empty by Empty or not JSON
// by InvalidJSON).
type Faults struct {
	// FailNext is how many of the next calls answer FailStatus; it counts
	// down with each of them.
	FailNext int
	// FailStatus is the status of injected failures (DefaultFailStatus
	// when 0), answered in the provider's error shape.
	FailStatus int
	// FailRate is the percentage (0–100) of calls that answer FailStatus,
	// drawn independently for each call (see Options.Seed).
	FailRate float64
	// Latency is added before the answer's headers.
	Latency time.Duration
	// Stall is waited before the first byte of the answer (no headers),
	// or until the client goes away; then the call is answered.
	Stall time.Duration
	// CutAfter > 0 breaks answers: a stream sends CutAfter events (at most
	// all but its last) and the connection is closed, without the final
	// [DONE], message_stop or response.completed and without the end of
	// the chunked body, so clients see a broken stream rather than a clean
	// end; a plain answer sends its headers and half its body, then closes.
	CutAfter int
	// Reset closes each call's connection without any answer (a TCP RST).
	Reset bool
	// Empty answers 200 with an empty completion: content "", text "", no
	// content blocks, an empty output_text.
	Empty bool
	// InvalidJSON answers text that is not JSON when a request asked for
	// JSON (response_format, text.format or output_format); other requests
	// get the usual reply.
	InvalidJSON bool
	// EventDelay is waited between the events of a stream.
	EventDelay time.Duration
	// RetryAfter, when > 0, is sent as Retry-After (whole seconds, rounded
	// up) and retry-after-ms with injected 429, 503 and 529 answers; an
	// injected 429 also carries the provider's rate-limit headers for
	// requests: none remaining, reset after RetryAfter (OpenAI's
	// x-ratelimit-reset-requests "20s", Anthropic's
	// anthropic-ratelimit-requests-reset as an RFC 3339 time).
	RetryAfter time.Duration
	// Quota makes injected failures say the account is out of credit:
	// OpenAI's insufficient_quota error (OpenAI sends it with 429:
	// FailStatus 429) and Anthropic's "Your credit balance is too low"
	// (Anthropic sends it with 400).
	Quota bool
	// ContextLimit > 0 is the context window, in tokens: a chat, legacy
	// completion, Responses or Messages request whose prompt is estimated
	// (about four characters a token) at more than that answers the
	// provider's own 400 (OpenAI's context_length_exceeded, Anthropic's
	// "prompt is too long: M tokens > N maximum").
	ContextLimit int
	// Nested > 0 answers every call 200 with a JSON body of arrays nested
	// that deep (Nested '[' then Nested ']'), plain or streamed request
	// alike: what a hostile or broken model could send to a client's JSON
	// parser.
	Nested int
}

func (f Faults) failStatus() int {
	if f.FailStatus == 0 {
		return DefaultFailStatus
	}
	return f.FailStatus
}

// Server is a fake model server; it implements http.Handler and is safe for
// concurrent use.
type Server struct {
	name    string
	logf    func(string, ...any)
	created int64

	mu        sync.Mutex
	reply     string
	faults    Faults
	rng       *rand.Rand
	calls     int64
	failed    int64
	bad       int64
	toolCalls int64
	paths     map[string]int64
	models    map[string]int64
	seen      map[string]bool
	last      *Request
}

// New returns a Server answering with opts.Reply and injecting opts.Faults.
func New(opts Options) *Server {
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	reply := opts.Reply
	if reply == "" {
		reply = DefaultReply
	}
	return &Server{
		name:    opts.Name,
		logf:    opts.Logf,
		created: time.Now().Unix(),
		reply:   reply,
		faults:  opts.Faults,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		paths:   map[string]int64{},
		models:  map[string]int64{},
		seen:    map[string]bool{},
	}
}

// Set replaces the faults injected from now on.
func (s *Server) Set(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Faults returns the faults injected now (FailNext as counted down so far).
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Heal clears every fault; the reply stays as it is.
func (s *Server) Heal() { s.Set(Faults{}) }

// SetReply changes the text completions answer (DefaultReply when empty).
func (s *Server) SetReply(reply string) {
	if reply == "" {
		reply = DefaultReply
	}
	s.mu.Lock()
	s.reply = reply
	s.mu.Unlock()
}

// Reply returns the text completions answer now.
func (s *Server) Reply() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reply
}

// Stats counts the API calls a Server received, failed ones included.
type Stats struct {
	// Name is Options.Name.
	Name string `json:"name,omitempty"`
	// Calls is every API call received.
	Calls int64 `json:"calls"`
	// Failed is the calls not answered with a complete 2xx answer: error
	// statuses (injected or not), resets and cut answers.
	Failed int64 `json:"failed"`
	// BadRequests is the calls refused because of the request itself (and
	// counted in Failed too): a body the provider's API would refuse
	// (Request.Rejected says why), an unknown path or a wrong method.
	BadRequests int64 `json:"bad_requests"`
	// ToolCalls is the answers that called a tool.
	ToolCalls int64 `json:"tool_calls"`
	// ByPath counts the calls by URL path.
	ByPath map[string]int64 `json:"by_path"`
	// ByModel counts the calls by the "model" of their body.
	ByModel map[string]int64 `json:"by_model"`
}

// Stats returns the counters since the start or the last ResetStats.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Name: s.name, Calls: s.calls, Failed: s.failed, BadRequests: s.bad, ToolCalls: s.toolCalls,
		ByPath: make(map[string]int64, len(s.paths)), ByModel: make(map[string]int64, len(s.models))}
	for k, v := range s.paths {
		st.ByPath[k] = v
	}
	for k, v := range s.models {
		st.ByModel[k] = v
	}
	return st
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.calls, s.failed, s.bad, s.toolCalls = 0, 0, 0, 0
	s.paths, s.models = map[string]int64{}, map[string]int64{}
	s.mu.Unlock()
}

// Request is an API call as it arrived.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Query is the raw query string.
	Query string `json:"query,omitempty"`
	Host  string `json:"host"`
	// Header holds the request's headers (Header.Get is case-insensitive).
	Header http.Header `json:"headers"`
	// Body is the raw body, byte for byte.
	Body string `json:"body"`
	// Rejected is the message of the error answered when the call was
	// refused because of the request itself (see Stats.BadRequests); ""
	// when it was not.
	Rejected string `json:"rejected,omitempty"`
}

// Last returns the last API call received, and false before the first.
func (s *Server) Last() (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Request{}, false
	}
	r := *s.last
	r.Header = r.Header.Clone()
	return r, true
}

// ServeHTTP answers API calls at the providers' paths and the control
// endpoints under /_.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_") {
		s.control(w, r)
		return
	}
	s.api(w, r)
}

// logLine writes one line about a request, when logging is on.
func (s *Server) logLine(format string, args ...any) {
	if s.logf == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	if s.name != "" {
		line = s.name + ": " + line
	}
	s.logf("%s", line)
}

// maxBody bounds the request bodies read.
const maxBody = 32 << 20

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
}
