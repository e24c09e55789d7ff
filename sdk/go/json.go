package fnhost

// JSON output through encoding/json. The SDK writes no JSON by hand: JSON, OutputJSON and Object
// all encode with encoding/json (HTML escaping off, no trailing newline).

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// marshal is json.Marshal with SetEscapeHTML(false), so <, > and & stay as they are (as in the
// other SDKs' output); the bytes are those of encoding/json otherwise.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// encodeBody is v as a JSON body: a []byte is already serialized JSON and is used as is;
// anything else is encoded with encoding/json.
func encodeBody(what string, v any) ([]byte, error) {
	if raw, ok := v.([]byte); ok {
		return raw, nil
	}
	out, err := marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// Object builds a JSON object with its keys in insertion order (a Go map is encoded with sorted
// keys, a struct in field order); each value is encoded by encoding/json. It is an encoding/json
// Marshaler, so it can be passed to JSON and OutputJSON or nested in other values.
//
//	fnhost.NewObject().Str("message", "Hello!").Int("value", 2).Bytes() // {"message":"Hello!","value":2}
type Object struct {
	buf []byte
	err error
}

// NewObject starts an empty object.
func NewObject() *Object { return &Object{buf: []byte{'{'}} }

// Any adds a field with any value encoding/json can encode (a struct, a map, a slice...).
func (o *Object) Any(k string, v any) *Object {
	if len(o.buf) > 1 {
		o.buf = append(o.buf, ',')
	}
	key, _ := marshal(k) // a string always encodes
	value, err := marshal(v)
	if err != nil {
		if o.err == nil {
			o.err = fmt.Errorf("fnhost.Object field %s: %w", key, err)
		}
		value = []byte("null")
	}
	o.buf = append(append(append(o.buf, key...), ':'), value...)
	return o
}

// Str adds a string field.
func (o *Object) Str(k, v string) *Object { return o.Any(k, v) }

// Int adds an integer field.
func (o *Object) Int(k string, v int64) *Object { return o.Any(k, v) }

// Bool adds a boolean field.
func (o *Object) Bool(k string, v bool) *Object { return o.Any(k, v) }

// Null adds a null field.
func (o *Object) Null(k string) *Object { return o.Any(k, nil) }

// Strings adds an array of strings (empty, not null, for a nil slice).
func (o *Object) Strings(k string, items []string) *Object {
	if items == nil {
		items = []string{}
	}
	return o.Any(k, items)
}

// Raw adds a field whose value is already serialized JSON (another Object's Bytes, for example);
// it is checked and compacted by encoding/json.
func (o *Object) Raw(k string, raw []byte) *Object { return o.Any(k, json.RawMessage(raw)) }

// Err is the first error of the object's values (then that value was written as null).
func (o *Object) Err() error { return o.err }

// Bytes is the finished object.
func (o *Object) Bytes() []byte {
	return append(append([]byte(nil), o.buf...), '}')
}

// MarshalJSON is Bytes, or Err if a value could not be encoded.
func (o *Object) MarshalJSON() ([]byte, error) {
	if o.err != nil {
		return nil, o.err
	}
	return o.Bytes(), nil
}

// AppendQuoted appends s as a JSON string literal (encoding/json's escaping, HTML escaping off;
// invalid UTF-8 becomes U+FFFD).
//
// Deprecated: use encoding/json, or Object.Str.
func AppendQuoted(dst []byte, s string) []byte {
	quoted, _ := marshal(s)
	return append(dst, quoted...)
}
