package fnhost

import "strconv"

// Object builds a JSON object exactly as Python's json.dumps(obj, separators=(",", ":")) writes
// it (keys in insertion order, non-ASCII as \uXXXX), so Go guests answer byte for byte like the
// Python SDK. encoding/json escapes differently (<, >, & and no \u for non-ASCII).
//
//	fnhost.NewObject().Str("message", "Hello!").Int("value", 2).Bytes() // {"message":"Hello!","value":2}
type Object struct {
	buf []byte
}

// NewObject starts an empty object.
func NewObject() *Object { return &Object{buf: []byte{'{'}} }

func (o *Object) key(k string) *Object {
	if len(o.buf) > 1 {
		o.buf = append(o.buf, ',')
	}
	o.buf = AppendQuoted(o.buf, k)
	o.buf = append(o.buf, ':')
	return o
}

// Str adds a string field.
func (o *Object) Str(k, v string) *Object {
	o.key(k).buf = AppendQuoted(o.buf, v)
	return o
}

// Int adds an integer field.
func (o *Object) Int(k string, v int64) *Object {
	o.key(k).buf = strconv.AppendInt(o.buf, v, 10)
	return o
}

// Bool adds a boolean field.
func (o *Object) Bool(k string, v bool) *Object {
	o.key(k).buf = strconv.AppendBool(o.buf, v)
	return o
}

// Null adds a null field.
func (o *Object) Null(k string) *Object {
	o.key(k).buf = append(o.buf, "null"...)
	return o
}

// Strings adds an array of strings.
func (o *Object) Strings(k string, items []string) *Object {
	o.key(k).buf = append(o.buf, '[')
	for i, s := range items {
		if i > 0 {
			o.buf = append(o.buf, ',')
		}
		o.buf = AppendQuoted(o.buf, s)
	}
	o.buf = append(o.buf, ']')
	return o
}

// Raw adds a field whose value is already serialized JSON (another Object's Bytes, for example).
func (o *Object) Raw(k string, raw []byte) *Object {
	o.key(k).buf = append(o.buf, raw...)
	return o
}

// Bytes is the finished object.
func (o *Object) Bytes() []byte {
	return append(append([]byte(nil), o.buf...), '}')
}

// AppendQuoted appends s as a JSON string literal, escaped like Python's json.dumps.
func AppendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, r := range s { // invalid UTF-8 reads as U+FFFD
		switch {
		case r == '"':
			dst = append(dst, '\\', '"')
		case r == '\\':
			dst = append(dst, '\\', '\\')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '\b':
			dst = append(dst, '\\', 'b')
		case r == '\f':
			dst = append(dst, '\\', 'f')
		case r >= ' ' && r <= '~':
			dst = append(dst, byte(r))
		default:
			units := []rune{r}
			if r > 0xFFFF {
				r -= 0x10000
				units = []rune{0xD800 + (r >> 10), 0xDC00 + (r & 0x3FF)}
			}
			for _, u := range units {
				dst = append(dst, '\\', 'u', hex[u>>12&0xF], hex[u>>8&0xF], hex[u>>4&0xF], hex[u&0xF])
			}
		}
	}
	return append(dst, '"')
}
