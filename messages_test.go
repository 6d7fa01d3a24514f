package passwordless

import (
	"regexp"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

// builtinTestTags are the languages that the library ships templates for.
var builtinTestTags = []language.Tag{
	language.English,
	language.MustParse("nb"),
	language.MustParse("nn"),
	language.Swedish,
	language.Danish,
	language.Finnish,
}

// newTestCatalog returns a catalog of the built-in templates with the
// overrides applied, failing the test if newCatalog fails.
func newTestCatalog(t *testing.T, overrides map[language.Tag]MessageTemplate, defaultTag language.Tag, product string) *catalog {
	t.Helper()
	c, err := newCatalog(overrides, defaultTag, product)
	if err != nil {
		t.Fatalf("newCatalog: %v", err)
	}
	return c
}

// renderTest renders one text, failing the test on an error.
func renderTest(t *testing.T, c *catalog, index int, conn Connection, data templateData) renderedText {
	t.Helper()
	out, err := c.render(index, conn, data)
	if err != nil {
		t.Fatalf("render %s for %s: %v", conn, c.tags[index], err)
	}
	return out
}

// tagIndex returns the catalog index of tag, failing the test if the
// catalog has no templates for it.
func tagIndex(t *testing.T, c *catalog, tag language.Tag) int {
	t.Helper()
	for i, got := range c.tags {
		if got == tag {
			return i
		}
	}
	t.Fatalf("catalog has no templates for %s", tag)
	return -1
}

func TestBuiltinTemplates(t *testing.T) {
	t.Parallel()
	templates := BuiltinTemplates()
	if len(templates) != len(builtinTestTags) {
		t.Errorf("BuiltinTemplates has %d languages, want %d", len(templates), len(builtinTestTags))
	}
	for _, tag := range builtinTestTags {
		tmpl, ok := templates[tag]
		if !ok {
			t.Errorf("BuiltinTemplates has no %s templates", tag)
			continue
		}
		texts := []struct {
			name, text string
		}{
			{"sms", tmpl.SMS},
			{"email_subject", tmpl.EmailSubject},
			{"email_body", tmpl.EmailBody},
		}
		for _, text := range texts {
			if strings.TrimSpace(text.text) == "" {
				t.Errorf("%s %s template is empty", tag, text.name)
			}
			if !strings.Contains(text.text, "{{.Code}}") {
				t.Errorf("%s %s template does not contain {{.Code}}", tag, text.name)
			}
		}
	}

	// Each call returns a new map, so a caller cannot change the templates
	// that later catalogs start from.
	templates[language.English] = MessageTemplate{}
	if BuiltinTemplates()[language.English].SMS == "" {
		t.Error("changing the map returned by BuiltinTemplates changed a later result")
	}
}

func TestCatalogMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		locale     string
		defaultTag language.Tag
		want       string
	}{
		{"nb_NO", language.English, "nb"},
		{"nb-NO", language.English, "nb"},
		{"nb", language.English, "nb"},
		{"no", language.English, "nb"},
		{"no-NO", language.English, "nb"},
		{"nn-NO", language.English, "nn"},
		{"nn", language.English, "nn"},
		{"sv-FI", language.English, "sv"},
		{"sv", language.English, "sv"},
		{"sv_SE", language.English, "sv"},
		{"da", language.English, "da"},
		{"da-DK", language.English, "da"},
		{"fi-FI", language.English, "fi"},
		{"en-US", language.English, "en"},
		{"EN-gb", language.English, "en"},
		{" sv ", language.English, "sv"},
		{"de", language.English, "en"},
		{"", language.English, "en"},
		{"garbage!!", language.English, "en"},
		{"de", language.Swedish, "sv"},
		{"", language.Swedish, "sv"},
		{"garbage!!", language.Swedish, "sv"},
		{"en", language.Swedish, "en"},
		{"nb-NO", language.Swedish, "nb"},
	}
	catalogs := make(map[language.Tag]*catalog)
	for _, tag := range []language.Tag{language.English, language.Swedish} {
		catalogs[tag] = newTestCatalog(t, nil, tag, "")
	}
	for _, tt := range tests {
		c := catalogs[tt.defaultTag]
		index := c.match(tt.locale)
		if index < 0 || index >= len(c.tags) {
			t.Errorf("match(%q) with default %s = %d, out of range", tt.locale, tt.defaultTag, index)
			continue
		}
		if got := c.tags[index].String(); got != tt.want {
			t.Errorf("match(%q) with default %s = %s, want %s", tt.locale, tt.defaultTag, got, tt.want)
		}
	}
}

// awkwardSpacing finds what an empty Product could leave behind in a line
// without its indentation: a double space, a space before punctuation or
// at the end, or a missing value.
var awkwardSpacing = regexp.MustCompile(`  | [.,:;!?]| $|<no value>`)

// hasAwkwardSpacing reports whether a line of text matches awkwardSpacing.
func hasAwkwardSpacing(text string) bool {
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\n")
		if awkwardSpacing.MatchString(strings.TrimLeft(line, " ")) {
			return true
		}
	}
	return false
}

func TestCatalogRender(t *testing.T) {
	t.Parallel()
	const code, minutes = "480213", "17"

	for _, product := range []string{"Acme Bank", ""} {
		c := newTestCatalog(t, nil, language.English, product)
		data := templateData{Code: code, Minutes: 17, Product: product}

		for _, tag := range builtinTestTags {
			index := tagIndex(t, c, tag)
			sms := renderTest(t, c, index, SMS, data)
			email := renderTest(t, c, index, Email, data)

			texts := []struct {
				name, text string
			}{
				{"sms", sms.body},
				{"email subject", email.subject},
				{"email body", email.body},
			}
			for _, text := range texts {
				if !strings.Contains(text.text, code) {
					t.Errorf("%s %s does not contain the code: %q", tag, text.name, text.text)
				}
				if product != "" && !strings.Contains(text.text, product) {
					t.Errorf("%s %s does not contain the product name: %q", tag, text.name, text.text)
				}
				if product == "" && hasAwkwardSpacing(text.text) {
					t.Errorf("%s %s without a product name has awkward spacing: %q", tag, text.name, text.text)
				}
			}
			if !strings.Contains(sms.body, minutes) {
				t.Errorf("%s sms does not contain the minutes: %q", tag, sms.body)
			}
			if !strings.Contains(email.body, minutes) {
				t.Errorf("%s email body does not contain the minutes: %q", tag, email.body)
			}
			if sms.subject != "" {
				t.Errorf("%s sms has subject %q, want none", tag, sms.subject)
			}
			if strings.ContainsAny(email.subject, "\r\n") {
				t.Errorf("%s email subject contains a line break: %q", tag, email.subject)
			}
		}
	}
}

func TestCatalogRenderIsNotEscaped(t *testing.T) {
	t.Parallel()
	const product = `Smith & Sons <"Bank">`
	c := newTestCatalog(t, nil, language.English, product)
	out := renderTest(t, c, tagIndex(t, c, language.English), Email, templateData{Code: "000001", Minutes: 5, Product: product})
	if !strings.Contains(out.body, product) {
		t.Errorf("email body = %q, want it to contain %q unescaped", out.body, product)
	}
}

func TestCatalogOverride(t *testing.T) {
	t.Parallel()
	data := templateData{Code: "123456", Minutes: 10}
	builtin := newTestCatalog(t, nil, language.English, "")
	overridden := newTestCatalog(t, map[language.Tag]MessageTemplate{
		language.English: {SMS: "Code: {{.Code}} ({{.Minutes}} min)"},
	}, language.English, "")

	en := tagIndex(t, overridden, language.English)
	sms := renderTest(t, overridden, en, SMS, data)
	if want := "Code: 123456 (10 min)"; sms.body != want {
		t.Errorf("overridden sms = %q, want %q", sms.body, want)
	}

	gotEmail := renderTest(t, overridden, en, Email, data)
	wantEmail := renderTest(t, builtin, tagIndex(t, builtin, language.English), Email, data)
	if gotEmail != wantEmail {
		t.Errorf("email after an sms override = %+v, want the built-in %+v", gotEmail, wantEmail)
	}

	for _, tag := range builtinTestTags[1:] {
		got := renderTest(t, overridden, tagIndex(t, overridden, tag), SMS, data)
		want := renderTest(t, builtin, tagIndex(t, builtin, tag), SMS, data)
		if got != want {
			t.Errorf("%s sms after an English override = %q, want the built-in %q", tag, got.body, want.body)
		}
	}
}

func TestCatalogNewLanguage(t *testing.T) {
	t.Parallel()
	german := MessageTemplate{
		SMS:          "{{.Code}} ist Ihr Anmeldecode.",
		EmailSubject: "Ihr Anmeldecode: {{.Code}}",
		EmailBody:    "Ihr Code lautet {{.Code}} und gilt {{.Minutes}} Minuten.",
	}
	c := newTestCatalog(t, map[language.Tag]MessageTemplate{language.German: german}, language.English, "")

	index := c.match("de-AT")
	if got := c.tags[index]; got != language.German {
		t.Fatalf("match(%q) = %s, want %s", "de-AT", got, language.German)
	}
	out := renderTest(t, c, index, SMS, templateData{Code: "123456", Minutes: 10})
	if want := "123456 ist Ihr Anmeldecode."; out.body != want {
		t.Errorf("German sms = %q, want %q", out.body, want)
	}

	if _, err := newCatalog(map[language.Tag]MessageTemplate{language.German: german}, language.German, ""); err != nil {
		t.Errorf("newCatalog with an added default language: %v", err)
	}
}

func TestNewCatalogErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		overrides  map[language.Tag]MessageTemplate
		defaultTag language.Tag
		product    string
	}{
		{
			name:       "unknown field in sms",
			overrides:  map[language.Tag]MessageTemplate{language.English: {SMS: "{{.Nope}}"}},
			defaultTag: language.English,
		},
		{
			name:       "unknown field in email body",
			overrides:  map[language.Tag]MessageTemplate{language.Swedish: {EmailBody: "Kod {{.Code}} {{.Nope}}"}},
			defaultTag: language.English,
		},
		{
			name:       "unclosed action in sms",
			overrides:  map[language.Tag]MessageTemplate{language.English: {SMS: "{{"}},
			defaultTag: language.English,
		},
		{
			name:       "unclosed action in subject",
			overrides:  map[language.Tag]MessageTemplate{language.Finnish: {EmailSubject: "{{.Code"}},
			defaultTag: language.English,
		},
		{
			name:       "subject with line break",
			overrides:  map[language.Tag]MessageTemplate{language.English: {EmailSubject: "Your code\nBcc: {{.Code}}"}},
			defaultTag: language.English,
		},
		{
			name:       "subject with carriage return",
			overrides:  map[language.Tag]MessageTemplate{language.Danish: {EmailSubject: "Kode\r{{.Code}}"}},
			defaultTag: language.English,
		},
		{
			name:       "product with line break in subject",
			defaultTag: language.English,
			product:    "Acme\r\nBcc: someone@example.com",
		},
		{
			name:       "new language without all texts",
			overrides:  map[language.Tag]MessageTemplate{language.German: {SMS: "{{.Code}}"}},
			defaultTag: language.English,
		},
		{
			name:       "default language without templates",
			defaultTag: language.German,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := newCatalog(tt.overrides, tt.defaultTag, tt.product)
			if err == nil {
				t.Fatal("newCatalog error = nil, want one")
			}
			if c != nil {
				t.Errorf("newCatalog = %p with an error, want nil", c)
			}
		})
	}
}

func TestCatalogSubjectTrimmed(t *testing.T) {
	t.Parallel()
	c := newTestCatalog(t, map[language.Tag]MessageTemplate{
		language.English: {EmailSubject: "  Your code: {{.Code}}\n"},
	}, language.English, "")
	out := renderTest(t, c, tagIndex(t, c, language.English), Email, templateData{Code: "123456", Minutes: 10})
	if want := "Your code: 123456"; out.subject != want {
		t.Errorf("subject = %q, want %q", out.subject, want)
	}
}
