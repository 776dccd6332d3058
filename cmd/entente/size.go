package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/entente-cti/entente/internal/gunzip"
)

// byteSize is a flag holding a size in bytes, written 1048576, 512KiB,
// 64MiB or 2GiB (K, M, G and T are binary multiples too).
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

func (s *byteSize) String() string {
	v := int64(*s)
	for _, u := range sizeUnits[:4] {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

func (s *byteSize) Set(v string) error {
	t := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a positive size such as 512MiB or 2GiB", v)
	}
	*s = byteSize(n * mult)
	return nil
}

// defaultMaxInput is the most a gzip input of ingest, import and match
// --indicators may inflate to: they hold what they read in memory.
const defaultMaxInput = 2 << 30

// inputLimits registers --max-size on fs and returns the limits of gzip
// inputs it sets.
func inputLimits(fs *flag.FlagSet) *gunzip.Limits {
	lim := &gunzip.Limits{MaxSize: defaultMaxInput}
	fs.Func("max-size", fmt.Sprintf("most a compressed input may inflate to, e.g. 512MiB or 4GiB (default 2GiB); inputs that inflate more than %d times their size are refused as gzip bombs", gunzip.DefaultMaxRatio), func(v string) error {
		var b byteSize
		if err := b.Set(v); err != nil {
			return err
		}
		lim.MaxSize = int64(b)
		return nil
	})
	return lim
}
