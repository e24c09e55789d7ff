package fnhost

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Context is what the host knows about this invocation.
type Context struct {
	// InvocationID is unique per invocation; it also names the invocation in logs and the API.
	InvocationID string
	FunctionName string
	// Version is the function version being run ("3").
	Version string
	// DeadlineUnixMs is the wall-clock deadline; past it the instance is stopped.
	DeadlineUnixMs uint64
	// MemoryLimitMB is the memory cap of this instance, in MiB.
	MemoryLimitMB uint32
}

// RemainingMs is the number of milliseconds left before the deadline (0 once it has passed).
func (c *Context) RemainingMs() uint64 {
	now := uint64(time.Now().UnixMilli())
	if now >= c.DeadlineUnixMs {
		return 0
	}
	return c.DeadlineUnixMs - now
}

// Header is one HTTP header; names are lower-case.
type Header struct {
	Name, Value string
}

// Headers keeps the order of the headers; a name may repeat.
type Headers []Header

// Get is the first value of header name (case-insensitive), or "".
func (h Headers) Get(name string) string {
	v, _ := h.Lookup(name)
	return v
}

// Lookup is the first value of header name (case-insensitive) and whether it is present.
func (h Headers) Lookup(name string) (string, bool) {
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			return x.Value, true
		}
	}
	return "", false
}

// Request is an HTTP request routed to the function URL.
type Request struct {
	Method string
	// Path is relative to the function URL, without the query ("/items"; "/" when empty).
	Path string
	// RawQuery is the query string without the "?".
	RawQuery string
	// PathWithQuery is the path and query as received.
	PathWithQuery string
	Headers       Headers
	Body          []byte
}

func newRequest(method, pathWithQuery string, headers Headers, body []byte) *Request {
	// As Python's urlsplit: the fragment is dropped and an empty path is "/".
	rest, _, _ := strings.Cut(pathWithQuery, "#")
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		path = "/"
	}
	return &Request{Method: method, Path: path, RawQuery: query, PathWithQuery: pathWithQuery, Headers: headers, Body: body}
}

// QueryPair is one query parameter.
type QueryPair struct {
	Name, Value string
}

// QueryPairs are all query parameters in order, "+" and "%XX" decoded; a parameter without "="
// has the value "" (as Python's parse_qsl(q, keep_blank_values=True)).
func (r *Request) QueryPairs() []QueryPair {
	var out []QueryPair
	for _, part := range strings.Split(r.RawQuery, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		out = append(out, QueryPair{percentDecode(name), percentDecode(value)})
	}
	return out
}

// QueryParams are the first value of each parameter, in order of first appearance (the Python
// SDK's req.query).
func (r *Request) QueryParams() []QueryPair {
	var out []QueryPair
	seen := map[string]bool{}
	for _, p := range r.QueryPairs() {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p)
		}
	}
	return out
}

// Query is the first value of query parameter name and whether it is present.
func (r *Request) Query(name string) (string, bool) {
	for _, p := range r.QueryPairs() {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// Text is the body as a string.
func (r *Request) Text() string { return string(r.Body) }

// JSON decodes the body into v (an error if it is not UTF-8 JSON).
func (r *Request) JSON(v any) error { return decodeJSON(r.Body, v) }

func percentDecode(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// Response is an HTTP response; build one with Text, JSON, Bytes or a literal.
type Response struct {
	Status  int
	Headers Headers
	Body    []byte
	// err is JSON's encoding error: returned from a handler, it is the function's failure.
	err error
}

// Text is a 200 response with text/plain; charset=utf-8.
func Text(body string) *Response {
	return &Response{Status: 200, Headers: Headers{{"content-type", "text/plain; charset=utf-8"}}, Body: []byte(body)}
}

// JSON is a 200 response with application/json and v, encoded by encoding/json (HTML escaping
// off), as the body; a []byte is already serialized JSON and is the body as is. If v cannot be
// encoded (a channel, a NaN, a failing MarshalJSON), the handler that returns this response fails
// with the encoding error (outcome GuestError).
//
//	return fnhost.JSON(map[string]any{"message": "Hello!"}), nil
func JSON(v any) *Response {
	body, err := encodeBody("fnhost.JSON", v)
	return &Response{Status: 200, Headers: Headers{{"content-type", "application/json"}}, Body: body, err: err}
}

// Bytes is a 200 response with body as is and the given content type.
func Bytes(body []byte, contentType string) *Response {
	return &Response{Status: 200, Headers: Headers{{"content-type", contentType}}, Body: body}
}

// WithStatus sets the status and returns the response.
func (r *Response) WithStatus(status int) *Response {
	r.Status = status
	return r
}

// WithHeader adds a header (the name is lower-cased) and returns the response.
func (r *Response) WithHeader(name, value string) *Response {
	r.Headers = append(r.Headers, Header{strings.ToLower(name), value})
	return r
}

// EventKind says what started the event handler.
type EventKind uint8

const (
	// EventInvoke is a direct invoke: Payload is the caller's payload, as sent.
	EventInvoke EventKind = 0
	// EventQueueBatch is a batch of queue messages (Messages).
	EventQueueBatch EventKind = 1
	// EventSchedule is one tick of a schedule (Schedule, ScheduledUnixMs).
	EventSchedule EventKind = 2
	// EventBlob is an object change from a blob trigger (Blob).
	EventBlob EventKind = 3
)

func (k EventKind) String() string {
	switch k {
	case EventInvoke:
		return "Invoke"
	case EventQueueBatch:
		return "QueueBatch"
	case EventSchedule:
		return "Schedule"
	case EventBlob:
		return "BlobChange"
	}
	return "Unknown"
}

// Message is one message of a queue batch.
type Message struct {
	ID    string
	Queue string
	Body  []byte
	// ReceiveCount is how many times this message has been delivered, this delivery included.
	ReceiveCount uint32
}

// Event is what started the event handler; the fields of its Kind are set.
type Event struct {
	Kind            EventKind
	Payload         []byte
	Messages        []Message
	Schedule        string
	ScheduledUnixMs uint64
	Blob            *BlobChange
}

// BlobChange is an object change delivered by a blob trigger (Event "put" or "delete").
type BlobChange struct {
	Bucket, Key, Event string
	Size               uint64
	SHA256             string
	ReceiveCount       uint32
}

// JSON decodes an invoke payload into v (an error if it is not UTF-8 JSON).
func (e *Event) JSON(v any) error { return decodeJSON(e.Payload, v) }

// EventResult is what the event handler returns.
type EventResult struct {
	// Output is returned to a synchronous caller.
	Output []byte
	// FailedMessageIDs are the queue messages to redeliver; empty means the batch succeeded.
	FailedMessageIDs []string
	// err is OutputJSON's encoding error: returned from a handler, it is the function's failure.
	err error
}

// Output is an EventResult with output (as is) and no failed messages.
func Output(output []byte) *EventResult { return &EventResult{Output: output} }

// OutputJSON is an EventResult whose output is v encoded by encoding/json (as JSON encodes a
// body), with no failed messages. If v cannot be encoded, the handler that returns it fails
// with the encoding error.
func OutputJSON(v any) *EventResult {
	out, err := encodeBody("fnhost.OutputJSON", v)
	return &EventResult{Output: out, err: err}
}

func decodeJSON(data []byte, v any) error {
	if !utf8.Valid(data) {
		return errors.New("JSON must be UTF-8")
	}
	return json.Unmarshal(data, v)
}
