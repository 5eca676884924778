package translate

// The Responses API stream events the converter writes, fields in the
// order of the OpenAI API reference (type and sequence_number first).

import "encoding/json"

// responsesHeader is the part every stream event has.
type responsesHeader struct {
	Type string `json:"type"`
	Seq  int64  `json:"sequence_number"`
}

func (h *responsesHeader) header() *responsesHeader { return h }

// responsesEvent is any stream event.
type responsesEvent interface{ header() *responsesHeader }

// responsesLifecycleEvent is response.created, response.in_progress,
// response.completed and response.incomplete.
type responsesLifecycleEvent struct {
	responsesHeader
	Response *responsesObject `json:"response"`
}

// responsesItemEvent is response.output_item.added and .done.
type responsesItemEvent struct {
	responsesHeader
	OutputIndex int `json:"output_index"`
	Item        any `json:"item"`
}

// responsesPartEvent is response.content_part.added and .done.
type responsesPartEvent struct {
	responsesHeader
	ItemID       string              `json:"item_id"`
	OutputIndex  int                 `json:"output_index"`
	ContentIndex int                 `json:"content_index"`
	Part         responsesOutputText `json:"part"`
}

// responsesTextEvent is response.output_text.delta (Delta set) and
// response.output_text.done (Text set).
type responsesTextEvent struct {
	responsesHeader
	ItemID       string  `json:"item_id"`
	OutputIndex  int     `json:"output_index"`
	ContentIndex int     `json:"content_index"`
	Delta        *string `json:"delta,omitempty"`
	Text         *string `json:"text,omitempty"`
	Logprobs     []any   `json:"logprobs"`
}

// responsesArgsDeltaEvent is response.function_call_arguments.delta.
type responsesArgsDeltaEvent struct {
	responsesHeader
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Delta       string `json:"delta"`
}

// responsesArgsDoneEvent is response.function_call_arguments.done.
type responsesArgsDoneEvent struct {
	responsesHeader
	ItemID      string `json:"item_id"`
	OutputIndex int    `json:"output_index"`
	Name        string `json:"name"`
	Arguments   string `json:"arguments"`
}

// responsesErrorEvent is the "error" event.
type responsesErrorEvent struct {
	responsesHeader
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Param   json.RawMessage `json:"param"`
}
