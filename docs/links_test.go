// Package docs_test checks that every relative link in README.md,
// deploy/kubernetes/README.md and the pages of docs/ leads to a file that exists and, when it names an anchor,
// to a heading of that page.
package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	codeSpan = regexp.MustCompile("`[^`]*`")
	linkDest = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	scheme   = regexp.MustCompile(`^[a-z]+:`)
	linkText = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

func TestRelativeLinksResolve(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join("..", "README.md"), filepath.Join("..", "deploy", "kubernetes", "README.md")}, pages...)
	checked := 0
	for _, page := range pages {
		for _, l := range links(t, page) {
			checked++
			path, anchor, _ := strings.Cut(l.dest, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s:%d: link %q: %s does not exist", page, l.line, l.dest, target)
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: link %q: an anchor on a file that is not Markdown", page, l.line, l.dest)
				continue
			}
			if !anchors(t, target)[anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading with the anchor #%s", page, l.line, l.dest, target, anchor)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the pages were not read")
	}
}

type link struct {
	line int
	dest string
}

// links returns the relative link destinations of a Markdown file, outside
// code blocks and code spans.
func links(t *testing.T, path string) []link {
	var out []link
	for i, line := range lines(t, path) {
		for _, m := range linkDest.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			if !scheme.MatchString(m[1]) {
				out = append(out, link{i + 1, m[1]})
			}
		}
	}
	return out
}

// anchors returns the anchors GitHub gives the headings of a Markdown file:
// lower case, punctuation dropped, spaces turned to dashes, a repeated one
// numbered.
func anchors(t *testing.T, path string) map[string]bool {
	out, seen := map[string]bool{}, map[string]int{}
	for _, line := range lines(t, path) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		text := strings.ToLower(linkText.ReplaceAllString(m[1], "$1"))
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return r
			}
			return -1
		}, text)
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// lines returns the lines of a Markdown file with those of fenced code
// blocks blanked, so line numbers stay right.
func lines(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(string(b), "\n")
	fenced := false
	for i, l := range ls {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			ls[i] = ""
		} else if fenced {
			ls[i] = ""
		}
	}
	return ls
}
