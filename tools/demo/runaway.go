package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runaway is what the indexer's runaway job did before its budget stopped
// it: its model calls are not tasks and are not in the task table.
type runaway struct {
	Calls      int    // model calls sent, the rejected one included
	Answered   int    // calls a model answered
	Rejected   int    // calls the sidecar answered 429
	Tokens     int64  // tokens the answered calls spent, as the models reported them
	Message    string // the 429's error message: it names the budget
	Code       string // the 429's error code
	RetryAfter string // the 429's Retry-After header
	Took       time.Duration
}

// runawayBudget is the name of the indexer's budget (tools/demo/indexer.hcl).
const runawayBudget = "indexer-tokens"

// runAway plays the indexer's batch job gone wrong: it POSTs chat
// completions to the indexer sidecar's gateway every interval, as a loop
// retrying the same work would, until the sidecar answers 429 or limit
// passes. Each answer's usage is added up; the 429's message and
// Retry-After are kept to be shown.
func runAway(ctx context.Context, control string, interval, limit time.Duration) (runaway, error) {
	var r runaway
	start := time.Now()
	client := http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(limit)
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-deadline:
			r.Took = time.Since(start)
			return r, nil
		case <-tick.C:
		}
		r.Calls++
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":`+
			`"index page %d of the archive again: list its sections, its links and a summary of each paragraph"}]}`, r.Calls)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+control+"/llm/v1/chat/completions",
			strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			continue
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var ans struct {
			Usage struct {
				Total int64 `json:"total_tokens"`
			} `json:"usage"`
			Error struct {
				Message string `json:"message"`
				Code    string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &ans)
		switch resp.StatusCode {
		case http.StatusOK:
			r.Answered++
			r.Tokens += ans.Usage.Total
		case http.StatusTooManyRequests:
			r.Rejected++
			r.Message, r.Code = ans.Error.Message, ans.Error.Code
			r.RetryAfter = resp.Header.Get("Retry-After")
			r.Took = time.Since(start)
			return r, nil
		}
	}
}

// budgetSpent is the tokens the sidecar's budget of the name counts in its
// current window (GET /v1/status), or -1 when it cannot tell.
func budgetSpent(control, name string) int64 {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + control + "/v1/status")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st struct {
		Budgets []struct {
			Name  string `json:"name"`
			Spent struct {
				Tokens int64 `json:"tokens"`
			} `json:"spent"`
		} `json:"budgets"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return -1
	}
	for _, b := range st.Budgets {
		if b.Name == name {
			return b.Spent.Tokens
		}
	}
	return -1
}
