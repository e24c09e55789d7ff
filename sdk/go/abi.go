package fnhost

// The wire format of docs/abi.md: exports, input decoding and output encoding.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// HTTPHandler handles a request; an error is the function's failure (outcome GuestError).
type HTTPHandler func(ctx *Context, req *Request) (*Response, error)

// EventHandler handles an invoke, a queue batch or a schedule tick; an error is the function's
// failure (outcome GuestError).
type EventHandler func(ctx *Context, ev *Event) (*EventResult, error)

var (
	httpHandler  HTTPHandler
	eventHandler EventHandler

	// inputs keeps the buffers handed out by fnhost_alloc reachable until the handler has read
	// them: Go's collector does not move objects, but it frees what nothing references.
	inputs = map[uintptr][]byte{}
	// output keeps the last result alive until the host has copied it (the next call replaces it).
	output []byte
)

// HandleHTTP registers the HTTP handler; call it from init().
func HandleHTTP(h HTTPHandler) { httpHandler = h }

// HandleEvent registers the event handler; call it from init().
func HandleEvent(h EventHandler) { eventHandler = h }

//go:wasmexport fnhost_alloc
func fnhostAlloc(size int32) int32 {
	if size < 0 {
		return 0
	}
	buf := make([]byte, size+1) // +1: a distinct, non-zero address even for size 0
	ptr := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	inputs[ptr] = buf[:size]
	return int32(ptr)
}

//go:wasmexport fnhost_handle_http
func fnhostHandleHTTP(ptr, length int32) int64 {
	r, err := takeInput(ptr, length)
	if err != nil {
		return publish(failure(err.Error()))
	}
	if httpHandler == nil {
		return publish(failure("this function has no HTTP handler (register one with fnhost.HandleHTTP in init)"))
	}
	ctx := r.context()
	req := newRequest(r.str(), r.str(), r.headers(), r.bytes())
	if err := r.finish(); err != nil {
		return publish(failure(err.Error()))
	}
	resp, err := httpHandler(ctx, req)
	if err != nil {
		return publish(failure(err.Error()))
	}
	if resp == nil {
		return publish(failure("the HTTP handler returned a nil *Response"))
	}
	if resp.err != nil {
		return publish(failure(resp.err.Error()))
	}
	if resp.Status < 200 || resp.Status > 599 {
		return publish(failure(fmt.Sprintf("HTTP status must be 200..599, got %d", resp.Status)))
	}
	w := []byte{0}
	w = binary.LittleEndian.AppendUint16(w, uint16(resp.Status))
	w = binary.LittleEndian.AppendUint32(w, uint32(len(resp.Headers)))
	for _, h := range resp.Headers {
		w = appendBytes(w, []byte(toLowerASCII(h.Name)))
		w = appendBytes(w, []byte(h.Value))
	}
	return publish(appendBytes(w, resp.Body))
}

//go:wasmexport fnhost_handle_event
func fnhostHandleEvent(ptr, length int32) int64 {
	r, err := takeInput(ptr, length)
	if err != nil {
		return publish(failure(err.Error()))
	}
	if eventHandler == nil {
		return publish(failure("this function has no event handler (register one with fnhost.HandleEvent in init)"))
	}
	ctx := r.context()
	ev := r.event()
	if err := r.finish(); err != nil {
		return publish(failure(err.Error()))
	}
	result, err := eventHandler(ctx, ev)
	if err != nil {
		return publish(failure(err.Error()))
	}
	if result == nil {
		result = &EventResult{}
	}
	if result.err != nil {
		return publish(failure(result.err.Error()))
	}
	w := appendBytes([]byte{0}, result.Output)
	w = binary.LittleEndian.AppendUint32(w, uint32(len(result.FailedMessageIDs)))
	for _, id := range result.FailedMessageIDs {
		w = appendBytes(w, []byte(id))
	}
	return publish(w)
}

// takeInput returns a reader over the buffer the host filled, and releases the buffer to the GC.
func takeInput(ptr, length int32) (*reader, error) {
	buf, ok := inputs[uintptr(ptr)]
	if !ok || length < 0 || int(length) > len(buf) {
		return nil, fmt.Errorf("fnhost SDK: input buffer (ptr %d, len %d) was not allocated by fnhost_alloc", ptr, length)
	}
	delete(inputs, uintptr(ptr))
	return &reader{buf: buf[:length]}, nil
}

func publish(out []byte) int64 {
	output = out
	ptr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))
	return int64(ptr<<32 | uint64(uint32(len(out))))
}

func failure(message string) []byte {
	return append([]byte{1}, message...)
}

func appendBytes(w, b []byte) []byte {
	w = binary.LittleEndian.AppendUint32(w, uint32(len(b)))
	return append(w, b...)
}

func toLowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// reader decodes the little-endian, unpadded encoding; the first error sticks and later reads
// return zero values, so a decode is a straight line checked once by finish.
type reader struct {
	buf []byte
	pos int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.pos {
		r.err = fmt.Errorf("truncated at byte %d (wanted %d more of %d)", r.pos, n, len(r.buf))
		return nil
	}
	out := r.buf[r.pos : r.pos+n]
	r.pos += n
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) bytes() []byte {
	return append([]byte(nil), r.take(int(r.u32()))...)
}

func (r *reader) str() string {
	at := r.pos
	s := string(r.take(int(r.u32())))
	if r.err == nil && !utf8.ValidString(s) {
		r.err = fmt.Errorf("string at byte %d is not UTF-8", at)
	}
	return s
}

// count reads a list length, bounded by the bytes left so a corrupt count cannot allocate much.
func (r *reader) count() int {
	n := int(r.u32())
	if n > len(r.buf)-r.pos {
		if r.err == nil {
			r.err = fmt.Errorf("list of %d items at byte %d is longer than the input", n, r.pos)
		}
		return 0
	}
	return n
}

func (r *reader) headers() Headers {
	n := r.count()
	h := make(Headers, 0, n)
	for i := 0; i < n; i++ {
		h = append(h, Header{r.str(), r.str()})
	}
	return h
}

func (r *reader) strings() []string {
	n := r.count()
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, r.str())
	}
	return out
}

func (r *reader) context() *Context {
	return &Context{InvocationID: r.str(), FunctionName: r.str(), Version: r.str(), DeadlineUnixMs: r.u64(), MemoryLimitMB: r.u32()}
}

func (r *reader) event() *Event {
	ev := &Event{Kind: EventKind(r.u8())}
	switch ev.Kind {
	case EventInvoke:
		ev.Payload = r.bytes()
	case EventQueueBatch:
		n := r.count()
		for i := 0; i < n; i++ {
			ev.Messages = append(ev.Messages, Message{ID: r.str(), Queue: r.str(), Body: r.bytes(), ReceiveCount: r.u32()})
		}
	case EventSchedule:
		ev.Schedule = r.str()
		ev.ScheduledUnixMs = r.u64()
	case EventBlob:
		ev.Blob = &BlobChange{Bucket: r.str(), Key: r.str(), Event: r.str(), Size: r.u64(), SHA256: r.str(), ReceiveCount: r.u32()}
	default:
		if r.err == nil {
			r.err = fmt.Errorf("unknown event kind %d", ev.Kind)
		}
	}
	return ev
}

func (r *reader) finish() error {
	if r.err == nil && r.pos != len(r.buf) {
		r.err = fmt.Errorf("%d unexpected bytes after the input", len(r.buf)-r.pos)
	}
	if r.err != nil {
		return errors.New("fnhost SDK: malformed input from the host: " + r.err.Error())
	}
	return nil
}
