package translate

// Why an answer ended, in each provider's words.

// finishReason is OpenAI's finish_reason for an Anthropic stop_reason.
func finishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn
}

// stopReason is Anthropic's stop_reason for an OpenAI finish_reason.
func stopReason(finishReason string) string {
	switch finishReason {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn" // stop
}

// Responses API status of an Anthropic stop_reason: a response cut by its
// cap is "incomplete" with reason max_output_tokens.
func responseStatus(stopReason string) (status, incompleteReason string) {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "incomplete", "max_output_tokens"
	case "refusal":
		return "incomplete", "content_filter"
	}
	return "completed", ""
}
