package passwordless

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// errUnsupportedMediaType means the body's content type is not one the
// handler reads.
var errUnsupportedMediaType = errors.New("passwordless: unsupported content type")

// params are the parameters of one request body, each with one value.
type params struct {
	values map[string]string
}

// names returns the parameter names in sorted order.
func (p params) names() []string {
	names := make([]string, 0, len(p.values))
	for name := range p.values {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// spellings lists the accepted names of each parameter, the contract's
// spelling first.
var spellings = map[string][]string{
	"connection":        {"connection"},
	"phoneNumber":       {"phoneNumber", "phone_number"},
	"email":             {"email"},
	"locale":            {"locale"},
	"client_id":         {"client_id", "clientId"},
	"client_secret":     {"client_secret", "clientSecret"},
	"passwordlessToken": {"passwordlessToken", "passwordless_token"},
	"code":              {"code"},
	"identifier":        {"identifier"},
}

// get returns the parameter's value and the name the client sent it under.
// A parameter sent under two of its spellings is an error.
func (p params) get(name string) (value, sentAs string, err error) {
	names, ok := spellings[name]
	if !ok {
		names = []string{name}
	}
	for _, n := range names {
		v, ok := p.values[n]
		if !ok {
			continue
		}
		if sentAs != "" {
			return "", n, &ParamError{Param: n, Err: ErrRepeatedParameter, Detail: "also sent as " + sentAs}
		}
		value, sentAs = v, n
	}
	if sentAs == "" {
		sentAs = names[0]
	}
	return value, sentAs, nil
}

// readParams reads the request body as a form, a multipart form or a JSON
// object, at most maxBytes long. Every parameter must appear once with a
// string value, so that "email[]=a&email[]=b" and repeated keys cannot
// smuggle a second recipient past validation.
func readParams(w http.ResponseWriter, r *http.Request, maxBytes int64) (params, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBytes)

	mediaType := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		mediaType, _, err = mime.ParseMediaType(ct)
		if err != nil {
			return params{}, errUnsupportedMediaType
		}
	}

	switch mediaType {
	case "application/x-www-form-urlencoded":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return params{}, err
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return params{}, &ParamError{Param: "body", Err: ErrInvalidParameter, Detail: "malformed form encoding"}
		}
		return singleValues(form)
	case "multipart/form-data":
		if err := r.ParseMultipartForm(maxBytes); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return params{}, err
			}
			return params{}, &ParamError{Param: "body", Err: ErrInvalidParameter, Detail: "malformed multipart form"}
		}
		defer r.MultipartForm.RemoveAll()
		return singleValues(r.MultipartForm.Value)
	case "application/json":
		return readJSON(r.Body)
	case "":
		// curl -X POST without -d sends neither a body nor a content type.
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return params{}, err
		}
		if n > 0 {
			return params{}, errUnsupportedMediaType
		}
		return params{values: map[string]string{}}, nil
	}
	return params{}, errUnsupportedMediaType
}

func singleValues(form map[string][]string) (params, error) {
	p := params{values: make(map[string]string, len(form))}
	for name, vs := range form {
		if len(vs) != 1 {
			return params{}, &ParamError{Param: name, Err: ErrRepeatedParameter}
		}
		p.values[name] = vs[0]
	}
	return p, nil
}

// readJSON reads a flat JSON object of string values. It walks the tokens
// itself because encoding/json keeps the last of repeated keys silently.
func readJSON(body io.Reader) (params, error) {
	dec := json.NewDecoder(body)
	malformed := &ParamError{Param: "body", Err: ErrInvalidParameter, Detail: "expected a JSON object of string values"}

	tok, err := dec.Token()
	if err != nil {
		return params{}, jsonReadError(err, malformed)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return params{}, malformed
	}

	p := params{values: map[string]string{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return params{}, jsonReadError(err, malformed)
		}
		name, _ := tok.(string)
		if _, dup := p.values[name]; dup {
			return params{}, &ParamError{Param: name, Err: ErrRepeatedParameter}
		}

		tok, err = dec.Token()
		if err != nil {
			return params{}, jsonReadError(err, malformed)
		}
		switch v := tok.(type) {
		case string:
			p.values[name] = v
		case nil:
			// null is the same as leaving the parameter out.
		default:
			return params{}, &ParamError{Param: name, Err: ErrInvalidParameter, Detail: fmt.Sprintf("expected a string, got %s", jsonKind(v))}
		}
	}
	if _, err := dec.Token(); err != nil {
		return params{}, jsonReadError(err, malformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return params{}, malformed
	}
	return p, nil
}

// jsonReadError keeps a body-size error as it is, so that the handler can
// respond with 413, and reports anything else as malformed JSON.
func jsonReadError(err error, malformed error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return malformed
}

func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an object or array"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	}
	return "another type"
}

// credentials collects the client credentials of a request from the
// Authorization header and the body. A client ID or secret sent both in
// HTTP Basic credentials and in the body must agree.
func credentials(r *http.Request, p params) (Credentials, error) {
	var creds Credentials
	var err error
	var idParam, secretParam string
	if creds.ClientID, idParam, err = p.get("client_id"); err != nil {
		return creds, err
	}
	if creds.ClientSecret, secretParam, err = p.get("client_secret"); err != nil {
		return creds, err
	}

	auth := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
	case strings.EqualFold(scheme, "Bearer"):
		creds.BearerToken = strings.TrimSpace(value)
		if creds.BearerToken == "" {
			// An empty token must not fall back to the default client.
			return creds, ErrInvalidAccessToken
		}
	case strings.EqualFold(scheme, "Basic"):
		id, secret, ok := basicCredentials(strings.TrimSpace(value))
		if !ok {
			return creds, &ParamError{Param: "Authorization", Err: ErrInvalidParameter, Detail: "malformed Basic credentials"}
		}
		if creds.ClientID != "" && creds.ClientID != id {
			return creds, &ParamError{Param: idParam, Err: ErrRepeatedParameter, Detail: "differs from the Basic credentials"}
		}
		if creds.ClientSecret != "" {
			return creds, &ParamError{Param: secretParam, Err: ErrRepeatedParameter, Detail: "also sent as Basic credentials"}
		}
		creds.ClientID, creds.ClientSecret = id, secret
	default:
		return creds, &ParamError{Param: "Authorization", Err: ErrInvalidParameter, Detail: "expected Bearer or Basic"}
	}
	return creds, nil
}

// basicCredentials decodes HTTP Basic credentials, whose parts are
// form-encoded as RFC 6749 section 2.3.1 requires for client credentials.
func basicCredentials(value string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return "", "", false
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if id, err = url.QueryUnescape(id); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(secret); err != nil {
		return "", "", false
	}
	return id, secret, true
}
