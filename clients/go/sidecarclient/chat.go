package sidecarclient

import (
	"context"
	"fmt"
	"net/http"
)

// Message is one message of a chat.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatAnswer is a chat completion's text and which model wrote it.
type ChatAnswer struct {
	Content  string
	Model    string // the label that answered (X-Sidecar-Model), else the one asked for
	Degraded bool   // a lighter fallback model answered (X-Sidecar-Degraded)
	Attempts int    // model calls made (X-Sidecar-Attempts); 0 when not said
}

// Chat asks the model (a label of the sidecar's configuration) for one
// non-streaming chat completion through the gateway. maxTokens 0 sends none.
// The trace headers of ctx go with it; the answer takes at most
// DefaultCallTimeout, or the context's deadline.
func (c *Client) Chat(ctx context.Context, model string, messages []Message, maxTokens int) (*ChatAnswer, error) {
	req := struct {
		Model     string    `json:"model"`
		Messages  []Message `json:"messages"`
		MaxTokens int       `json:"max_tokens,omitempty"`
	}{model, messages, maxTokens}
	ctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	resp, err := c.send(ctx, request{method: http.MethodPost, url: c.ModelBaseURL() + "/chat/completions", body: req, trace: true})
	if err != nil {
		return nil, err
	}
	var completion struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := resp.JSON(&completion); err != nil {
		return nil, fmt.Errorf("sidecar: reading the model's answer: %w", err)
	}
	if len(completion.Choices) == 0 {
		return nil, fmt.Errorf("sidecar: the model's answer has no choices")
	}
	answer := &ChatAnswer{Content: completion.Choices[0].Message.Content, Model: resp.Model, Degraded: resp.Degraded, Attempts: resp.Attempts}
	if answer.Model == "" {
		answer.Model = model
	}
	return answer, nil
}
