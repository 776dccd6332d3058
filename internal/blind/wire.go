package blind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// EpochInfo describes a partner's current epoch: what a partner fetches
// first (GET /api/v1/blind/epoch).
type EpochInfo struct {
	Suite string `json:"suite"`
	Epoch uint64 `json:"epoch"`
	// Start and End bound the epoch; evaluations for it are accepted
	// until End plus Grace.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Grace Duration  `json:"grace"`
	// Params are the prefix lengths to ask for an address at.
	Params Params `json:"params"`
	// MaxBatch is the most elements one evaluation request may carry.
	MaxBatch int `json:"max_batch"`
	// SetLen is the number of inputs in the set, SetBytes the size of
	// its encoding, SetDigest "sha256:" and the hex SHA-256 of it.
	SetLen    int    `json:"set_len"`
	SetBytes  int    `json:"set_bytes"`
	SetDigest string `json:"set_digest"`
	// Budget is the partner's budget and its use in the current period.
	Budget BudgetState `json:"budget"`
	// PublicKey is the encoding of k·G for the partner's key k of the
	// epoch (base64 in JSON): with it the partner blinds additively, at
	// less cost (see [Translator]). It reveals nothing of k.
	PublicKey []byte `json:"public_key,omitempty"`
}

// BudgetState is a budget and its use in the current period.
type BudgetState struct {
	Limit  int64     `json:"limit"`
	Period string    `json:"period"`
	Used   int64     `json:"used"`
	Reset  time.Time `json:"reset"`
}

// Duration is a time.Duration written in JSON as whole seconds.
type Duration time.Duration

// MarshalJSON writes the duration in seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(int64(time.Duration(d) / time.Second))
}

// UnmarshalJSON reads whole seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s int64
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration in seconds: %w", err)
	}
	if s < 0 || s > int64(100*365*24*time.Hour/time.Second) {
		return fmt.Errorf("duration of %d seconds out of range", s)
	}
	*d = Duration(time.Duration(s) * time.Second)
	return nil
}

// EvalRequest is one batch of blinded elements to evaluate (POST
// /api/v1/blind/evaluate). Elements are base64 in JSON.
type EvalRequest struct {
	Epoch    uint64   `json:"epoch"`
	Elements [][]byte `json:"elements"`
}

// EvalResponse holds the evaluated elements, in the order of the request,
// and the budget after the batch.
type EvalResponse struct {
	Epoch    uint64      `json:"epoch"`
	Elements [][]byte    `json:"elements"`
	Budget   BudgetState `json:"budget"`
}

// ErrorBody is the JSON body of a refusal.
type ErrorBody struct {
	Reason  Reason `json:"reason"`
	Message string `json:"message"`
	// Index is the faulty element's position, when one is at fault.
	Index *int `json:"index,omitempty"`
	// RetryAfter is, for an exhausted budget, the seconds until the next
	// period (also in the Retry-After header).
	RetryAfter int64 `json:"retry_after,omitempty"`
}

// Body returns the JSON body of the refusal.
func (e *Error) Body() ErrorBody {
	b := ErrorBody{Reason: e.Reason, Message: e.Message}
	if e.Index >= 0 {
		i := e.Index
		b.Index = &i
	}
	if e.RetryAfter > 0 {
		b.RetryAfter = int64((e.RetryAfter + time.Second - 1) / time.Second)
	}
	return b
}

// Err returns the refusal that the body describes.
func (b ErrorBody) Err() *Error {
	e := &Error{Reason: b.Reason, Message: b.Message, Index: -1, RetryAfter: time.Duration(b.RetryAfter) * time.Second}
	if b.Index != nil {
		e.Index = *b.Index
	}
	return e
}

// MaxRequestBytes bounds the JSON of an evaluation request of maxBatch
// elements (base64 of 32 bytes is 44 characters, plus quotes and commas).
func MaxRequestBytes(maxBatch int) int64 { return int64(maxBatch)*48 + 256 }

// decodeStrict decodes exactly one JSON value of at most limit bytes into
// v, refusing unknown fields and trailing data.
func decodeStrict(r io.Reader, limit int64, what string, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%s is longer than %d bytes: %w", what, limit, errTooLong)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("decode %s: data after the JSON value", what)
	}
	return nil
}

// ParseEvalRequest decodes an evaluation request of at most maxBatch
// elements. Too many elements is a refusal (ReasonBatchTooLarge); other
// faults are ReasonLength (malformed JSON or base64 is a request of the
// wrong shape).
func ParseEvalRequest(r io.Reader, maxBatch int) (*EvalRequest, error) {
	var req EvalRequest
	if err := decodeStrict(r, MaxRequestBytes(maxBatch), "evaluation request", &req); err != nil {
		if errors.Is(err, errTooLong) {
			return nil, refuse(ReasonBatchTooLarge, -1, "evaluation request: more than %d elements", maxBatch)
		}
		return nil, refuse(ReasonLength, -1, "evaluation request: %v", err)
	}
	return &req, nil
}

var errTooLong = errors.New("too long")

// ParseEvalResponse decodes an evaluation response of at most maxBatch
// elements.
func ParseEvalResponse(r io.Reader, maxBatch int) (*EvalResponse, error) {
	var resp EvalResponse
	if err := decodeStrict(r, MaxRequestBytes(maxBatch)+1024, "evaluation response", &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// maxInfoBytes bounds an EpochInfo's JSON.
const maxInfoBytes = 64 << 10

// ParseEpochInfo decodes and checks an EpochInfo.
func ParseEpochInfo(r io.Reader) (*EpochInfo, error) {
	var info EpochInfo
	if err := decodeStrict(r, maxInfoBytes, "epoch info", &info); err != nil {
		return nil, err
	}
	if info.Suite != SuiteID {
		return nil, fmt.Errorf("epoch info: suite %q, this program speaks %s", info.Suite, SuiteID)
	}
	if err := info.Params.Validate(); err != nil {
		return nil, fmt.Errorf("epoch info: params: %w", err)
	}
	if info.MaxBatch < 1 || info.MaxBatch > MaxBatchLimit {
		return nil, fmt.Errorf("epoch info: max_batch %d out of range 1-%d", info.MaxBatch, MaxBatchLimit)
	}
	if info.PublicKey != nil {
		if _, err := decodeElement(info.PublicKey); err != nil {
			return nil, fmt.Errorf("epoch info: public_key: %w", err)
		}
	}
	return &info, nil
}

// MaxBatchLimit is the largest batch a server may accept.
const MaxBatchLimit = 65536

// Peer is the partner's view of a node that grants it blind access: the
// three calls of the protocol, free of any transport. Package blindhttp
// implements it over HTTP; tests implement it in process.
type Peer interface {
	// Info returns the current epoch.
	Info(ctx context.Context) (*EpochInfo, error)
	// Set returns the encoded set of an epoch.
	Set(ctx context.Context, epoch uint64) ([]byte, error)
	// Evaluate evaluates one batch. A refusal is an *Error.
	Evaluate(ctx context.Context, req *EvalRequest) (*EvalResponse, error)
}

// Resolver is a [Peer] that resolves blinded references (see
// [ResolveRequest]).
type Resolver interface {
	Resolve(ctx context.Context, refs []string) (*ResolveResponse, error)
}

// MaxResolveRefs is the most blinded references one resolve request may
// name.
const MaxResolveRefs = 1000

// ResolveRequest asks the node what blinded references name (POST
// /api/v1/blind/resolve): the references of hits a partner found.
type ResolveRequest struct {
	Refs []string `json:"refs"`
}

// Resolution statuses.
const (
	// ResolveReleased: the indicator the reference names is released to
	// the partner under its agreement; Objects holds it.
	ResolveReleased = "released"
	// ResolveWithheld: the reference names an indicator of the
	// partner's set that its agreement does not release.
	ResolveWithheld = "withheld"
	// ResolveUnknown: the reference names nothing in the partner's set
	// (another epoch, or a false positive of the filter).
	ResolveUnknown = "unknown"
)

// Resolution is the answer for one reference.
type Resolution struct {
	Ref    string `json:"ref"`
	Status string `json:"status"`
	// Objects are the indicators released, as STIX JSON.
	Objects []json.RawMessage `json:"objects,omitempty"`
}

// ResolveResponse answers a ResolveRequest, one resolution per
// reference, in order.
type ResolveResponse struct {
	Results []Resolution `json:"results"`
}

// ParseResolveRequest decodes a resolve request: at most MaxResolveRefs
// references, each of the form blind:EPOCH:KEY. A fault is a refusal
// naming the reference at fault (ReasonLength for malformed JSON or a
// malformed reference, ReasonBatchTooLarge for too many).
func ParseResolveRequest(r io.Reader) (*ResolveRequest, []Ref, error) {
	var req ResolveRequest
	if err := decodeStrict(r, int64(MaxResolveRefs)*64+256, "resolve request", &req); err != nil {
		if errors.Is(err, errTooLong) {
			return nil, nil, refuse(ReasonBatchTooLarge, -1, "resolve request: more than %d references", MaxResolveRefs)
		}
		return nil, nil, refuse(ReasonLength, -1, "resolve request: %v", err)
	}
	if len(req.Refs) == 0 {
		return nil, nil, refuse(ReasonEmpty, -1, "refs: no reference to resolve")
	}
	if len(req.Refs) > MaxResolveRefs {
		return nil, nil, refuse(ReasonBatchTooLarge, -1, "refs: %d references, at most %d", len(req.Refs), MaxResolveRefs)
	}
	refs := make([]Ref, len(req.Refs))
	for i, s := range req.Refs {
		r, err := ParseRef(s)
		if err != nil {
			return nil, nil, refuse(ReasonLength, i, "refs[%d]: %v", i, err)
		}
		refs[i] = r
	}
	return &req, refs, nil
}

// maxResolveResponse bounds a resolve response a client reads.
const maxResolveResponse = 64 << 20

// ParseResolveResponse decodes a resolve response to n references.
func ParseResolveResponse(r io.Reader, n int) (*ResolveResponse, error) {
	var resp ResolveResponse
	if err := decodeStrict(r, maxResolveResponse, "resolve response", &resp); err != nil {
		return nil, err
	}
	if len(resp.Results) != n {
		return nil, fmt.Errorf("resolve response: %d results for %d references", len(resp.Results), n)
	}
	return &resp, nil
}
