package blind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/FastFilter/xorfilter"
)

// shardBits is the number of top bits of a key that choose its shard.
const shardBits = 8

// nShards is the number of shards of a set.
const nShards = 1 << shardBits

// Key is what the set holds of an OPRF output: its first eight bytes,
// big-endian. Outputs are SHA-512 digests, so keys are uniform.
func Key(output []byte) uint64 { return binary.BigEndian.Uint64(output[:8]) }

// Set is a blinded set: for one partner and epoch, the keys of the OPRF
// outputs of the indicator inputs, in 256 binary fuse filters with 32-bit
// fingerprints (about 4.5 bytes per input, a false positive for one
// lookup in 2^32). Sharding by the top byte of the key lets a [Builder]
// rebuild only the filters that changed. A Set is immutable and safe for
// concurrent use; it holds no value and nothing computable from a value
// without the epoch's key.
type Set struct {
	// Epoch is the epoch whose key made the set.
	Epoch uint64
	// Params are the prefix lengths its networks were expanded at.
	Params Params
	count  int
	shards [nShards]*shard
}

type shard struct {
	n int // keys
	f xorfilter.BinaryFuse[uint32]
}

// Len returns the number of distinct inputs in the set.
func (s *Set) Len() int { return s.count }

// Contains reports whether the key of an OPRF output is in the set (with
// a false positive rate of 2^-32).
func (s *Set) Contains(key uint64) bool {
	sh := s.shards[key>>(64-shardBits)]
	return sh != nil && sh.f.Contains(key)
}

// newShard builds the filter of a shard's keys (distinct).
func newShard(keys []uint64) (*shard, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	f, err := xorfilter.NewBinaryFuse[uint32](keys)
	if err != nil {
		return nil, fmt.Errorf("build filter of %d keys: %w", len(keys), err)
	}
	return &shard{n: len(keys), f: *f}, nil
}

// Bytes returns the size of the set's filters in bytes.
func (s *Set) Bytes() int {
	n := 0
	for _, sh := range s.shards {
		if sh != nil {
			n += 4 * len(sh.f.Fingerprints)
		}
	}
	return n
}

// setMagic starts an encoded set.
const setMagic = "ENTBLSET"

// setVersion is the version of the encoding.
const setVersion = 1

// MarshalBinary encodes the set:
//
//	"ENTBLSET" version:u16 epoch:u64 count:u64
//	n4:u8 v4 lengths:u8... n6:u8 v6 lengths:u8...
//	256 × ( keys:u32 [ seed:u64 segment_length:u32 segment_count:u32
//	                   fingerprints:(segment_count+2)×segment_length × u32 ] )
//
// all integers little-endian; a shard with no keys has nothing after its
// count.
func (s *Set) MarshalBinary() ([]byte, error) {
	size := len(setMagic) + 2 + 8 + 8 + 2 + len(s.Params.V4Lengths) + len(s.Params.V6Lengths) + nShards*4 + s.Bytes() + nShards*16
	b := make([]byte, 0, size)
	b = append(b, setMagic...)
	b = binary.LittleEndian.AppendUint16(b, setVersion)
	b = binary.LittleEndian.AppendUint64(b, s.Epoch)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.count))
	for _, l := range [][]int{s.Params.V4Lengths, s.Params.V6Lengths} {
		b = append(b, byte(len(l)))
		for _, x := range l {
			b = append(b, byte(x))
		}
	}
	for _, sh := range s.shards {
		if sh == nil {
			b = binary.LittleEndian.AppendUint32(b, 0)
			continue
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(sh.n))
		b = binary.LittleEndian.AppendUint64(b, sh.f.Seed)
		b = binary.LittleEndian.AppendUint32(b, sh.f.SegmentLength)
		b = binary.LittleEndian.AppendUint32(b, sh.f.SegmentCount)
		for _, fp := range sh.f.Fingerprints {
			b = binary.LittleEndian.AppendUint32(b, fp)
		}
	}
	return b, nil
}

// maxSegmentLength is the longest segment the filter library builds.
const maxSegmentLength = 1 << 18

// DecodeSet decodes an encoded set, checking every declared size against
// the data it has: a set from a peer is untrusted input.
func DecodeSet(data []byte) (*Set, error) {
	d := setDecoder{b: data}
	if string(d.take(len(setMagic), "magic")) != setMagic {
		return nil, errors.New("blind set: not a blinded set (bad magic)")
	}
	if v := d.u16("version"); d.err == nil && v != setVersion {
		return nil, fmt.Errorf("blind set: version %d, this program reads version %d", v, setVersion)
	}
	s := &Set{Epoch: d.u64("epoch")}
	count := d.u64("count")
	for fam, bitsLen := range []int{32, 128} {
		n := int(d.u8("number of prefix lengths"))
		if d.err == nil && n > maxLengths {
			return nil, fmt.Errorf("blind set: %d prefix lengths for IPv%d (at most %d)", n, 4+2*fam, maxLengths)
		}
		l := make([]int, 0, n)
		for range n {
			l = append(l, int(d.u8("prefix length")))
		}
		if fam == 0 {
			s.Params.V4Lengths = l
		} else {
			s.Params.V6Lengths = l
		}
		_ = bitsLen
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := s.Params.Validate(); err != nil {
		return nil, fmt.Errorf("blind set: %w", err)
	}
	total := uint64(0)
	for i := range s.shards {
		n := d.u32("shard key count")
		if d.err != nil {
			return nil, d.err
		}
		if n == 0 {
			continue
		}
		var sh shard
		sh.n = int(n)
		sh.f.Seed = d.u64("shard seed")
		sl := d.u32("segment length")
		sc := d.u32("segment count")
		if d.err != nil {
			return nil, d.err
		}
		if sl == 0 || sl&(sl-1) != 0 || sl > maxSegmentLength {
			return nil, fmt.Errorf("blind set: shard %d: segment length %d is not a power of two up to %d", i, sl, maxSegmentLength)
		}
		hi, cl := bits.Mul32(sc, sl)
		if sc == 0 || hi != 0 {
			return nil, fmt.Errorf("blind set: shard %d: segment count %d out of range", i, sc)
		}
		nfp := uint64(sc+2) * uint64(sl)
		if rest := uint64(len(d.b)) / 4; nfp > rest {
			return nil, fmt.Errorf("blind set: shard %d declares %d fingerprints, %d bytes are left", i, nfp, len(d.b))
		}
		if uint64(n) > nfp {
			return nil, fmt.Errorf("blind set: shard %d declares %d keys for %d fingerprints", i, n, nfp)
		}
		sh.f.SegmentLength, sh.f.SegmentLengthMask, sh.f.SegmentCount, sh.f.SegmentCountLength = sl, sl-1, sc, cl
		sh.f.Fingerprints = make([]uint32, nfp)
		raw := d.take(int(nfp)*4, "fingerprints")
		for j := range sh.f.Fingerprints {
			sh.f.Fingerprints[j] = binary.LittleEndian.Uint32(raw[4*j:])
		}
		total += uint64(n)
		s.shards[i] = &sh
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("blind set: %d bytes after the last shard", len(d.b))
	}
	if total != count {
		return nil, fmt.Errorf("blind set: the shards hold %d keys, the header says %d", total, count)
	}
	s.count = int(count)
	return s, nil
}

type setDecoder struct {
	b   []byte
	off int
	err error
}

func (d *setDecoder) take(n int, what string) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("blind set: truncated at byte %d reading the %s", d.off, what)
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	d.off += n
	return v
}

func (d *setDecoder) u8(what string) uint8   { return d.take(1, what)[0] }
func (d *setDecoder) u16(what string) uint16 { return binary.LittleEndian.Uint16(d.take(2, what)) }
func (d *setDecoder) u32(what string) uint32 { return binary.LittleEndian.Uint32(d.take(4, what)) }
func (d *setDecoder) u64(what string) uint64 { return binary.LittleEndian.Uint64(d.take(8, what)) }
