package fnhost

// The host capabilities: imports of module "fnhost" behind KV, Queue, Secrets and Log.

import "unsafe"

//go:wasmimport fnhost kv_get
func kvGet(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport fnhost kv_set
func kvSet(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32) int64

//go:wasmimport fnhost kv_delete
func kvDelete(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport fnhost kv_list_keys
func kvListKeys(bucket unsafe.Pointer, bucketLen uint32, prefix unsafe.Pointer, prefixLen uint32, limit uint32) int64

//go:wasmimport fnhost queue_publish
func queuePublish(queue unsafe.Pointer, queueLen uint32, body unsafe.Pointer, bodyLen uint32) int64

//go:wasmimport fnhost secrets_get
func secretsGet(name unsafe.Pointer, nameLen uint32) int64

//go:wasmimport fnhost log_write
func logWrite(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport fnhost result_len
func resultLen() int32

//go:wasmimport fnhost result_read
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
