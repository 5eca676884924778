package gateway

// Usage is what one answer cost, as the model that served it reported it.
type Usage struct {
	Model       string // the label the agent asked for
	ServedBy    string // the label of the model that answered (a degraded answer counts against it)
	Input       int64  // input tokens not read from a cache
	Output      int64  // output tokens (reasoning included)
	CachedInput int64  // input tokens read from the provider's cache
	CacheWrite  int64  // input tokens written to the cache (Anthropic's cache_creation_input_tokens; 0 for OpenAI)
}
