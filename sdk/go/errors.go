package fnhost

import "fmt"

// ErrorKind is the WIT error case of a failed host call.
type ErrorKind string

const (
	KindDenied        ErrorKind = "denied"         // not granted by the manifest
	KindNotFound      ErrorKind = "not-found"      // a missing key, or a granted secret that is not set
	KindTooLarge      ErrorKind = "too-large"      // a key, value, message or name over its limit
	KindLimitExceeded ErrorKind = "limit-exceeded" // this invocation's host-call budget is spent
	KindUnavailable   ErrorKind = "unavailable"    // the store failed; retrying may work
	KindInvalid       ErrorKind = "invalid"        // malformed argument (empty key, bad name...)
	KindTimeout       ErrorKind = "timeout"        // an outbound HTTP request got no complete response in time
)

// Error is an expected failure of a host call. Match it with errors.Is(err, fnhost.ErrDenied)
// (and the other sentinels), or errors.As for the message.
type Error struct {
	Kind    ErrorKind
	Message string
}

// Sentinels for errors.Is: an *Error matches the sentinel of its Kind.
var (
	ErrDenied        = &Error{Kind: KindDenied}
	ErrNotFound      = &Error{Kind: KindNotFound}
	ErrTooLarge      = &Error{Kind: KindTooLarge}
	ErrLimitExceeded = &Error{Kind: KindLimitExceeded}
	ErrUnavailable   = &Error{Kind: KindUnavailable}
	ErrInvalid       = &Error{Kind: KindInvalid}
	ErrTimeout       = &Error{Kind: KindTimeout}
)

func (e *Error) Error() string {
	if e.Message == "" || e.Message == string(e.Kind) {
		return string(e.Kind)
	}
	return string(e.Kind) + ": " + e.Message
}

// Text is what happened as the host said it; the kind when the host gave no message (as the
// Python SDK's HostError.message).
func (e *Error) Text() string {
	if e.Message == "" {
		return string(e.Kind)
	}
	return e.Message
}

// Is reports whether target is the sentinel (or an *Error) of the same kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && (t.Message == "" || t.Message == e.Message)
}

var kindsByCode = map[int64]ErrorKind{
	1: KindDenied, 2: KindNotFound, 3: KindTooLarge, 4: KindLimitExceeded, 5: KindUnavailable, 6: KindInvalid,
	7: KindTimeout,
}

func errorFromCode(code int64, message string) *Error {
	kind, ok := kindsByCode[code]
	if !ok {
		return &Error{Kind: KindUnavailable, Message: fmt.Sprintf("unknown host error code %d: %s", code, message)}
	}
	if kind == KindNotFound {
		message = ""
	}
	return &Error{Kind: kind, Message: message}
}
