package passwordless

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"golang.org/x/text/language"
)

// MessageTemplate holds the texts of one language as text/template
// sources. The templates see .Code, .Minutes (the code's lifetime in whole
// minutes) and .Product (Config.ProductName, possibly empty).
type MessageTemplate struct {
	SMS          string `json:"sms"`
	EmailSubject string `json:"email_subject"`
	EmailBody    string `json:"email_body"`
}

//go:embed locales/*.json
var localeFiles embed.FS

// builtinLocales are the languages shipped with the library, English first
// because it is the default.
var builtinLocales = []string{"en", "nb", "nn", "sv", "da", "fi"}

// BuiltinTemplates returns the message templates shipped with the library:
// English, Norwegian Bokmål and Nynorsk, Swedish, Danish and Finnish.
func BuiltinTemplates() map[language.Tag]MessageTemplate {
	out := make(map[language.Tag]MessageTemplate, len(builtinLocales))
	for _, name := range builtinLocales {
		data, err := localeFiles.ReadFile("locales/" + name + ".json")
		if err != nil {
			panic("passwordless: embedded locale missing: " + name)
		}
		var t MessageTemplate
		if err := json.Unmarshal(data, &t); err != nil {
			panic("passwordless: embedded locale " + name + " is invalid: " + err.Error())
		}
		out[language.MustParse(name)] = t
	}
	return out
}

type parsedTemplate struct {
	sms, subject, body *template.Template
}

// catalog chooses a language for a request and renders its texts.
type catalog struct {
	tags      []language.Tag
	matcher   language.Matcher
	templates []parsedTemplate
	product   string
}

type templateData struct {
	Code    string
	Minutes int
	Product string
}

// newCatalog parses the built-in templates with the overrides applied. The
// default language comes first, so that the matcher falls back to it.
func newCatalog(overrides map[language.Tag]MessageTemplate, defaultTag language.Tag, product string) (*catalog, error) {
	all := BuiltinTemplates()
	for tag, t := range overrides {
		base := all[tag]
		if t.SMS != "" {
			base.SMS = t.SMS
		}
		if t.EmailSubject != "" {
			base.EmailSubject = t.EmailSubject
		}
		if t.EmailBody != "" {
			base.EmailBody = t.EmailBody
		}
		all[tag] = base
	}
	if _, ok := all[defaultTag]; !ok {
		return nil, fmt.Errorf("passwordless: no message templates for the default locale %s", defaultTag)
	}

	c := &catalog{product: product}
	add := func(tag language.Tag, t MessageTemplate) error {
		if t.SMS == "" || t.EmailSubject == "" || t.EmailBody == "" {
			return fmt.Errorf("passwordless: message templates for %s: sms, email_subject and email_body are all required", tag)
		}
		var p parsedTemplate
		var err error
		if p.sms, err = template.New("sms").Option("missingkey=error").Parse(t.SMS); err != nil {
			return fmt.Errorf("passwordless: sms template for %s: %w", tag, err)
		}
		if p.subject, err = template.New("subject").Option("missingkey=error").Parse(t.EmailSubject); err != nil {
			return fmt.Errorf("passwordless: email_subject template for %s: %w", tag, err)
		}
		if p.body, err = template.New("body").Option("missingkey=error").Parse(t.EmailBody); err != nil {
			return fmt.Errorf("passwordless: email_body template for %s: %w", tag, err)
		}
		c.tags = append(c.tags, tag)
		c.templates = append(c.templates, p)
		return nil
	}

	if err := add(defaultTag, all[defaultTag]); err != nil {
		return nil, err
	}
	for tag, t := range all {
		if tag == defaultTag {
			continue
		}
		if err := add(tag, t); err != nil {
			return nil, err
		}
	}
	c.matcher = language.NewMatcher(c.tags)

	// Render every template once, so that a broken override fails in New
	// rather than on a user's request.
	for i := range c.templates {
		if _, err := c.render(i, Email, templateData{Code: "000000", Minutes: 10, Product: product}); err != nil {
			return nil, err
		}
		if _, err := c.render(i, SMS, templateData{Code: "000000", Minutes: 10, Product: product}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// match returns the index of the best language for a locale parameter such
// as "nb_NO", "nb-NO", "no" or "sv-FI", or of the default language when the
// parameter is empty, invalid or matches nothing.
func (c *catalog) match(locale string) int {
	locale = strings.TrimSpace(locale)
	if locale == "" {
		return 0
	}
	tag, err := language.Parse(strings.ReplaceAll(locale, "_", "-"))
	if err != nil {
		return 0
	}
	_, index, confidence := c.matcher.Match(tag)
	if confidence == language.No {
		return 0
	}
	return index
}

type renderedText struct {
	subject, body string
}

func (c *catalog) render(index int, conn Connection, data templateData) (renderedText, error) {
	t := c.templates[index]
	var out renderedText
	var b strings.Builder

	if conn == SMS {
		if err := t.sms.Execute(&b, data); err != nil {
			return out, fmt.Errorf("passwordless: rendering sms for %s: %w", c.tags[index], err)
		}
		out.body = b.String()
		return out, nil
	}

	if err := t.subject.Execute(&b, data); err != nil {
		return out, fmt.Errorf("passwordless: rendering email_subject for %s: %w", c.tags[index], err)
	}
	out.subject = strings.TrimSpace(b.String())
	if strings.ContainsAny(out.subject, "\r\n") {
		return out, fmt.Errorf("passwordless: email subject for %s contains a line break", c.tags[index])
	}
	b.Reset()
	if err := t.body.Execute(&b, data); err != nil {
		return out, fmt.Errorf("passwordless: rendering email_body for %s: %w", c.tags[index], err)
	}
	out.body = b.String()
	return out, nil
}
