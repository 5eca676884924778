package translate

// Placeholders, replaced by the real translators.

func chatToMessagesRequest(body []byte, o Options) ([]byte, error) {
	return nil, untranslatable("todo")
}
func messagesToChatRequest(body []byte, o Options) ([]byte, error) {
	return nil, untranslatable("todo")
}
func messageToChatAnswer(body []byte) ([]byte, error)        { return nil, untranslatable("todo") }
func chatToMessageAnswer(body []byte) ([]byte, error)        { return nil, untranslatable("todo") }
func errorBody(provider string, status int, b []byte) []byte { return b }
