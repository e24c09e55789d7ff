package fnhost

// The host capabilities: imports of module "fnhost@0.2.0" (the core ABI of contract version 0.2.0,
// docs/abi.md) behind KV, Queue, Secrets, Log and HTTP.

import (
	"encoding/binary"
	"unsafe"
)

//go:wasmimport fnhost@0.2.0 kv_get
func kvGet(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport fnhost@0.2.0 kv_set
func kvSet(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32) int64

//go:wasmimport fnhost@0.2.0 kv_delete
func kvDelete(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport fnhost@0.2.0 kv_list_keys
func kvListKeys(bucket unsafe.Pointer, bucketLen uint32, prefix unsafe.Pointer, prefixLen uint32, limit uint32) int64

//go:wasmimport fnhost@0.2.0 kv_increment
func kvIncrement(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32, delta int64) int64

//go:wasmimport fnhost@0.2.0 kv_compare_and_swap
func kvCompareAndSwap(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32, hasExpected int32, expected unsafe.Pointer, expectedLen uint32, value unsafe.Pointer, valueLen uint32) int64

//go:wasmimport fnhost@0.2.0 kv_set_with_ttl
func kvSetWithTTL(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32, ttlMs uint64) int64

//go:wasmimport fnhost@0.2.0 kv_get_many
func kvGetMany(bucket unsafe.Pointer, bucketLen uint32, keys unsafe.Pointer, keysLen uint32) int64

//go:wasmimport fnhost@0.2.0 kv_set_many
func kvSetMany(bucket unsafe.Pointer, bucketLen uint32, entries unsafe.Pointer, entriesLen uint32) int64

//go:wasmimport fnhost@0.2.0 queue_publish
func queuePublish(queue unsafe.Pointer, queueLen uint32, body unsafe.Pointer, bodyLen uint32) int64

//go:wasmimport fnhost@0.2.0 secrets_get
func secretsGet(name unsafe.Pointer, nameLen uint32) int64

//go:wasmimport fnhost@0.2.0 log_write
func logWrite(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport fnhost@0.2.0 outbound_http_request
func outboundHTTPRequest(method unsafe.Pointer, methodLen uint32, url unsafe.Pointer, urlLen uint32, headers unsafe.Pointer, headersLen uint32, body unsafe.Pointer, bodyLen uint32, hasTimeout int32, timeoutMs uint32) int64

//go:wasmimport fnhost@0.2.0 result_len
func resultLen() int32

//go:wasmimport fnhost@0.2.0 result_read
func resultRead(dst unsafe.Pointer) int32

func strPtr(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bytesPtr(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

// takePending reads the pending result (a success value or an error message).
func takePending() []byte {
	n := resultLen()
	if n <= 0 {
		resultRead(unsafe.Pointer(&[1]byte{}))
		return []byte{}
	}
	buf := make([]byte, n)
	written := resultRead(unsafe.Pointer(unsafe.SliceData(buf)))
	return buf[:max(0, min(int(written), len(buf)))]
}

// check turns a host call's i64 into an error: >= 0 is success, -code a failure whose message is pending.
func check(rc int64) error {
	if rc >= 0 {
		return nil
	}
	return errorFromCode(-rc, string(takePending()))
}

type kvAPI struct{}

// KV is key-value storage in the buckets granted by the manifest ([grants] kv = ["name"]).
var KV kvAPI

// Get is the value of key; an error matching ErrNotFound if it is not set.
func (kvAPI) Get(bucket, key string) ([]byte, error) {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	if err := check(kvGet(bp, bl, kp, kl)); err != nil {
		return nil, err
	}
	return takePending(), nil
}

// Set stores value under key.
func (kvAPI) Set(bucket, key string, value []byte) error {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	vp, vl := bytesPtr(value)
	return check(kvSet(bp, bl, kp, kl, vp, vl))
}

// Delete removes key; deleting a missing key succeeds.
func (kvAPI) Delete(bucket, key string) error {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	return check(kvDelete(bp, bl, kp, kl))
}

// ListKeys are the keys starting with prefix, in byte order, at most limit of them.
func (kvAPI) ListKeys(bucket, prefix string, limit uint32) ([]string, error) {
	bp, bl := strPtr(bucket)
	pp, pl := strPtr(prefix)
	if err := check(kvListKeys(bp, bl, pp, pl, limit)); err != nil {
		return nil, err
	}
	r := &reader{buf: takePending()}
	keys := r.strings()
	if err := r.finish(); err != nil {
		return nil, &Error{Kind: KindInvalid, Message: "the host returned a malformed key list: " + err.Error()}
	}
	return keys, nil
}

// Increment adds delta to the integer under key (a missing key counts as 0) and returns the new
// value, atomically: concurrent increments are never lost. The value is stored as decimal text.
func (kvAPI) Increment(bucket, key string, delta int64) (int64, error) {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	if err := check(kvIncrement(bp, bl, kp, kl, delta)); err != nil {
		return 0, err
	}
	r := &reader{buf: takePending()}
	value := int64(r.u64())
	if err := r.finish(); err != nil {
		return 0, &Error{Kind: KindInvalid, Message: "the host returned a malformed s64: " + err.Error()}
	}
	return value, nil
}

// CompareAndSwap sets key to value only if its value is expected now (nil: only if the key is
// absent) and reports whether it did. Atomic.
func (kvAPI) CompareAndSwap(bucket, key string, expected, value []byte) (bool, error) {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	has := int32(0)
	if expected != nil {
		has = 1
	}
	ep, el := bytesPtr(expected)
	vp, vl := bytesPtr(value)
	rc := kvCompareAndSwap(bp, bl, kp, kl, has, ep, el, vp, vl)
	if err := check(rc); err != nil {
		return false, err
	}
	return rc == 1, nil
}

// SetWithTTL stores value under key for ttlMs milliseconds; after that the key is gone.
func (kvAPI) SetWithTTL(bucket, key string, value []byte, ttlMs uint64) error {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	vp, vl := bytesPtr(value)
	return check(kvSetWithTTL(bp, bl, kp, kl, vp, vl, ttlMs))
}

// GetMany returns the values of up to 1,000 keys in the order asked (nil: not set).
func (kvAPI) GetMany(bucket string, keys []string) ([][]byte, error) {
	list := binary.LittleEndian.AppendUint32(nil, uint32(len(keys)))
	for _, k := range keys {
		list = binary.LittleEndian.AppendUint32(list, uint32(len(k)))
		list = append(list, k...)
	}
	bp, bl := strPtr(bucket)
	lp, ll := bytesPtr(list)
	if err := check(kvGetMany(bp, bl, lp, ll)); err != nil {
		return nil, err
	}
	r := &reader{buf: takePending()}
	n := r.count()
	values := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		if r.u8() == 1 {
			values = append(values, r.bytes())
		} else {
			values = append(values, nil)
		}
	}
	if err := r.finish(); err != nil {
		return nil, &Error{Kind: KindInvalid, Message: "the host returned a malformed value list: " + err.Error()}
	}
	return values, nil
}

// KVEntry is one entry of SetMany.
type KVEntry struct {
	Key   string
	Value []byte
}

// SetMany stores up to 1,000 entries in one transaction: all of them or, on an error, none.
func (kvAPI) SetMany(bucket string, entries []KVEntry) error {
	list := binary.LittleEndian.AppendUint32(nil, uint32(len(entries)))
	for _, e := range entries {
		list = binary.LittleEndian.AppendUint32(list, uint32(len(e.Key)))
		list = append(list, e.Key...)
		list = binary.LittleEndian.AppendUint32(list, uint32(len(e.Value)))
		list = append(list, e.Value...)
	}
	bp, bl := strPtr(bucket)
	lp, ll := bytesPtr(list)
	return check(kvSetMany(bp, bl, lp, ll))
}

type queueAPI struct{}

// Queue publishes to the durable queues granted by the manifest ([grants] queues = ["name"]).
var Queue queueAPI

// Publish appends a message to queue and returns its id.
func (queueAPI) Publish(queue string, body []byte) (string, error) {
	qp, ql := strPtr(queue)
	bp, bl := bytesPtr(body)
	if err := check(queuePublish(qp, ql, bp, bl)); err != nil {
		return "", err
	}
	return string(takePending()), nil
}

type secretsAPI struct{}

// Secrets reads the secrets granted by the manifest ([grants] secrets = ["name"]).
var Secrets secretsAPI

// Get is the secret's value; an error matching ErrNotFound if it is granted but not set.
func (secretsAPI) Get(name string) (string, error) {
	np, nl := strPtr(name)
	if err := check(secretsGet(np, nl)); err != nil {
		return "", err
	}
	return string(takePending()), nil
}

// LogLevel is the level of a log line.
type LogLevel int32

const (
	LevelDebug LogLevel = 0
	LevelInfo  LogLevel = 1
	LevelWarn  LogLevel = 2
	LevelError LogLevel = 3
)

type logAPI struct{}

// Log writes log lines, recorded with the invocation (stdout and stderr are captured too).
var Log logAPI

// Write records message at level.
func (logAPI) Write(level LogLevel, message string) {
	mp, ml := strPtr(message)
	logWrite(int32(level), mp, ml)
}

func (l logAPI) Debug(message string) { l.Write(LevelDebug, message) }
func (l logAPI) Info(message string)  { l.Write(LevelInfo, message) }
func (l logAPI) Warn(message string)  { l.Write(LevelWarn, message) }
func (l logAPI) Error(message string) { l.Write(LevelError, message) }

type httpAPI struct{}

// HTTP makes outbound requests to the origins granted by the manifest
// ([grants] http = ["https://api.example.com"]). An HTTP error status (404, 500...) is a
// response; an error means there is none: ErrDenied (origin not granted, or an address the host
// refuses), ErrTimeout, ErrTooLarge, ErrLimitExceeded, ErrInvalid, ErrUnavailable (DNS, TLS...).
var HTTP httpAPI

// HTTPResponse is the final response of an outbound request (after redirects).
type HTTPResponse struct {
	Status  int
	Headers Headers // lower-case names, in the order received
	Body    []byte
}

// Do sends method url with headers and body. timeoutMs bounds the whole exchange (0: the host's
// default); it never runs past the invocation's deadline.
func (httpAPI) Do(method, url string, headers Headers, body []byte, timeoutMs uint32) (*HTTPResponse, error) {
	list := binary.LittleEndian.AppendUint32(nil, uint32(len(headers)))
	for _, h := range headers {
		for _, s := range []string{h.Name, h.Value} {
			list = binary.LittleEndian.AppendUint32(list, uint32(len(s)))
			list = append(list, s...)
		}
	}
	mp, ml := strPtr(method)
	up, ul := strPtr(url)
	hp, hl := bytesPtr(list)
	bp, bl := bytesPtr(body)
	has := int32(0)
	if timeoutMs > 0 {
		has = 1
	}
	if err := check(outboundHTTPRequest(mp, ml, up, ul, hp, hl, bp, bl, has, timeoutMs)); err != nil {
		return nil, err
	}
	r := &reader{buf: takePending()}
	status := r.take(2)
	resp := &HTTPResponse{}
	if status != nil {
		resp.Status = int(binary.LittleEndian.Uint16(status))
	}
	resp.Headers = r.headers()
	resp.Body = r.bytes()
	if err := r.finish(); err != nil {
		return nil, &Error{Kind: KindInvalid, Message: "the host returned a malformed response: " + err.Error()}
	}
	return resp, nil
}

// Get sends GET url.
func (h httpAPI) Get(url string) (*HTTPResponse, error) { return h.Do("GET", url, nil, nil, 0) }

// Post sends POST url with body of contentType.
func (h httpAPI) Post(url, contentType string, body []byte) (*HTTPResponse, error) {
	return h.Do("POST", url, Headers{{"content-type", contentType}}, body, 0)
}
