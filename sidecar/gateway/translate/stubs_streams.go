package translate

// Placeholders, replaced by the real stream converters.

func newMessagesToChatStream(request []byte) Stream { return nil }
func newChatToMessagesStream(request []byte) Stream { return nil }
