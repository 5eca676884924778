package translate

import (
	"strings"

	"github.com/tidwall/gjson"
)

// Images: OpenAI gives an image as a URL, either http(s) or a data: URL
// holding base64 bytes; Anthropic as a source of type "url" or "base64"
// (with its media type). The bytes are never decoded: they pass as text.

// anthropicImageTypes are the image media types Anthropic reads.
var anthropicImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// imageSource is the Anthropic source of an OpenAI image URL. where names
// the content part for the error.
func imageSource(url, where string) (*amSource, error) {
	if mediaType, data, ok := parseDataURL(url); ok {
		if !anthropicImageTypes[mediaType] {
			return nil, untranslatable("%s is an image of type %q; Anthropic reads image/jpeg, image/png, image/gif and image/webp", where, mediaType)
		}
		return &amSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if hasPrefixFold(url, "http://") || hasPrefixFold(url, "https://") {
		return &amSource{Type: "url", URL: url}, nil
	}
	return nil, untranslatable("%s has an image URL that is neither http(s) nor a base64 data: URL; Anthropic reads only those", where)
}

// parseDataURL splits "data:image/png;base64,AAAA" into its media type
// (lower case, without parameters) and its base64 data. ok is false for
// anything else, including data: URLs that are not base64.
func parseDataURL(url string) (mediaType, data string, ok bool) {
	if !hasPrefixFold(url, "data:") {
		return "", "", false
	}
	header, data, found := strings.Cut(url[len("data:"):], ",")
	if !found || len(header) < len(";base64") || !strings.EqualFold(header[len(header)-len(";base64"):], ";base64") {
		return "", "", false
	}
	mediaType, _, _ = strings.Cut(header[:len(header)-len(";base64")], ";")
	return strings.ToLower(strings.TrimSpace(mediaType)), data, true
}

// imageURL is the OpenAI image URL of an Anthropic image source. where
// names the block for the error.
func imageURL(source gjson.Result, where string) (string, error) {
	switch t := source.Get("type").Str; t {
	case "base64":
		return "data:" + source.Get("media_type").Str + ";base64," + source.Get("data").Str, nil
	case "url":
		return source.Get("url").Str, nil
	case "file":
		return "", untranslatable("%s is an image uploaded with the Files API (source type \"file\"); OpenAI cannot read Anthropic's files", where)
	default:
		return "", untranslatable("%s has an image source of type %q; only \"base64\" and \"url\" can be sent to OpenAI", where, t)
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
