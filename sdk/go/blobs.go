package fnhost

import "unsafe"

//go:wasmimport fnhost@0.2.0 blobs_open_write
func blobsOpenWrite(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32, ct unsafe.Pointer, ctLen uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_write
func blobsWrite(handle uint32, data unsafe.Pointer, dataLen uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_finish
func blobsFinish(handle uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_abort
func blobsAbort(handle uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_open_read
func blobsOpenRead(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_read
func blobsRead(handle uint32, max uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_close_read
func blobsCloseRead(handle uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_stat
func blobsStat(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_list_keys
func blobsListKeys(bucket unsafe.Pointer, bucketLen uint32, prefix unsafe.Pointer, prefixLen uint32, after unsafe.Pointer, afterLen uint32, limit uint32) int64

//go:wasmimport fnhost@0.2.0 blobs_delete
func blobsDelete(bucket unsafe.Pointer, bucketLen uint32, key unsafe.Pointer, keyLen uint32) int64

// BlobChunk is the most one host call moves.
const BlobChunk = 1 << 20

// ObjectInfo is a blob object's metadata (times in milliseconds since the Unix epoch).
type ObjectInfo struct {
	Key           string
	Size          uint64
	SHA256        string
	ContentType   string
	CreatedUnixMs uint64
	UpdatedUnixMs uint64
}

func objectInfo() (*ObjectInfo, error) {
	r := &reader{buf: takePending()}
	info := &ObjectInfo{Key: r.str(), Size: r.u64(), SHA256: r.str(), ContentType: r.str(), CreatedUnixMs: r.u64(), UpdatedUnixMs: r.u64()}
	if err := r.finish(); err != nil {
		return nil, &Error{Kind: KindInvalid, Message: "the host returned a malformed object-info: " + err.Error()}
	}
	return info, nil
}

type blobsAPI struct{}

// Blobs is object storage in the buckets granted by the manifest ([grants] blobs = ["name"]),
// streamed in chunks through handles that live as long as the invocation.
var Blobs blobsAPI

// BlobWriter writes one object: Write chunks, then Finish (visible at once) or Abort. A writer
// neither finished nor aborted is dropped when the invocation ends.
type BlobWriter struct{ handle uint32 }

// BlobReader reads one object: each Read returns the next chunk, empty at the end.
type BlobReader struct{ handle uint32 }

// Create starts writing key ("" content type: application/octet-stream).
func (blobsAPI) Create(bucket, key, contentType string) (*BlobWriter, error) {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	cp, cl := strPtr(contentType)
	rc := blobsOpenWrite(bp, bl, kp, kl, cp, cl)
	if err := check(rc); err != nil {
		return nil, err
	}
	return &BlobWriter{uint32(rc)}, nil
}

// Write appends data (sent in chunks of at most BlobChunk).
func (w *BlobWriter) Write(data []byte) (int, error) {
	for start := 0; start < len(data); start += BlobChunk {
		chunk := data[start:min(len(data), start+BlobChunk)]
		p, n := bytesPtr(chunk)
		if err := check(blobsWrite(w.handle, p, n)); err != nil {
			return start, err
		}
	}
	return len(data), nil
}

// Finish makes the object visible, atomically, and returns its metadata.
func (w *BlobWriter) Finish() (*ObjectInfo, error) {
	if err := check(blobsFinish(w.handle)); err != nil {
		return nil, err
	}
	return objectInfo()
}

// Abort drops what was written.
func (w *BlobWriter) Abort() error { return check(blobsAbort(w.handle)) }

// Open opens key for reading; an error matching ErrNotFound if there is none.
func (blobsAPI) Open(bucket, key string) (*BlobReader, error) {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	rc := blobsOpenRead(bp, bl, kp, kl)
	if err := check(rc); err != nil {
		return nil, err
	}
	return &BlobReader{uint32(rc)}, nil
}

// Read returns up to max bytes (at most BlobChunk) from where the last read ended; empty at the end.
func (r *BlobReader) Read(max int) ([]byte, error) {
	if err := check(blobsRead(r.handle, uint32(min(max, BlobChunk)))); err != nil {
		return nil, err
	}
	return takePending(), nil
}

// Close ends the read handle.
func (r *BlobReader) Close() error { return check(blobsCloseRead(r.handle)) }

// Put stores an object and returns its metadata.
func (b blobsAPI) Put(bucket, key string, data []byte, contentType string) (*ObjectInfo, error) {
	w, err := b.Create(bucket, key, contentType)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	return w.Finish()
}

// Get is the whole object; an error matching ErrNotFound if there is none.
func (b blobsAPI) Get(bucket, key string) ([]byte, error) {
	r, err := b.Open(bucket, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []byte
	for {
		chunk, err := r.Read(BlobChunk)
		if err != nil || len(chunk) == 0 {
			return out, err
		}
		out = append(out, chunk...)
	}
}

// Stat is the object's metadata; an error matching ErrNotFound if there is none.
func (blobsAPI) Stat(bucket, key string) (*ObjectInfo, error) {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	if err := check(blobsStat(bp, bl, kp, kl)); err != nil {
		return nil, err
	}
	return objectInfo()
}

// List are the keys starting with prefix that sort after after, in byte order, at most limit (1..1000).
func (blobsAPI) List(bucket, prefix, after string, limit uint32) ([]string, error) {
	bp, bl := strPtr(bucket)
	pp, pl := strPtr(prefix)
	ap, al := strPtr(after)
	if err := check(blobsListKeys(bp, bl, pp, pl, ap, al, limit)); err != nil {
		return nil, err
	}
	r := &reader{buf: takePending()}
	keys := r.strings()
	if err := r.finish(); err != nil {
		return nil, &Error{Kind: KindInvalid, Message: "the host returned a malformed key list: " + err.Error()}
	}
	return keys, nil
}

// Delete removes the object; deleting a missing key succeeds.
func (blobsAPI) Delete(bucket, key string) error {
	bp, bl := strPtr(bucket)
	kp, kl := strPtr(key)
	return check(blobsDelete(bp, bl, kp, kl))
}
