package translate

// Placeholders, replaced by the real Responses API translators.

func responsesToMessagesRequest(body []byte, o Options) ([]byte, error) {
	return nil, untranslatable("todo")
}
func messageToResponseAnswer(body []byte) ([]byte, error) { return nil, untranslatable("todo") }
func newMessagesToResponsesStream(request []byte) Stream  { return nil }
