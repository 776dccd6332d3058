package devices

import (
	"math"
	"slices"
	"time"
)

// beat is one connection in a destination's window: its start in
// milliseconds after the window's base, and the bytes the device sent.
type beat struct {
	t    uint32
	size uint32
}

// window holds a destination's latest connections by time: at most
// BeaconConfig.Window beats, sorted by time, in a ring that starts at
// head once full. Logs are only roughly in time order (Zeek writes a
// connection when it ends, Suricata a flow when it times out), so a beat
// older than the newest is inserted at its place and, when the window is
// full, the oldest is dropped.
type window struct {
	beats []beat
	base  int64 // Unix milliseconds of t == 0
	head  uint8 // the oldest beat, once the window is full
}

// at returns the i-th beat by time.
func (w *window) at(i int) beat {
	i += int(w.head)
	if i >= len(w.beats) {
		i -= len(w.beats)
	}
	return w.beats[i]
}

// newest returns the time of the newest beat (Unix ms); the window must
// not be empty.
func (w *window) newest() int64 { return w.base + int64(w.at(len(w.beats)-1).t) }

// linear puts the ring in time order from index 0.
func (w *window) linear() {
	if w.head != 0 {
		slices.Reverse(w.beats[:w.head])
		slices.Reverse(w.beats[w.head:])
		slices.Reverse(w.beats)
		w.head = 0
	}
}

// add records a connection at Unix millisecond ms that sent size bytes.
func (w *window) add(ms int64, size uint64, limit int) {
	if size > math.MaxUint32 {
		size = math.MaxUint32
	}
	if len(w.beats) == 0 {
		w.base, w.head = ms, 0
	}
	off := ms - w.base
	if off < 0 || off > math.MaxUint32 {
		w.rebase(ms)
		off = ms - w.base
		if off < 0 {
			return // older than the whole window allows
		}
	}
	b := beat{uint32(off), uint32(size)}
	n := len(w.beats)
	if n >= limit {
		if w.at(n-1).t <= b.t {
			// The usual case: the newest replaces the oldest.
			w.beats[w.head] = b
			if w.head++; int(w.head) == n {
				w.head = 0
			}
			return
		}
		w.linear()
		i := n
		for i > 0 && w.beats[i-1].t > b.t {
			i--
		}
		if i == 0 {
			return // older than every beat kept
		}
		copy(w.beats[:i-1], w.beats[1:i])
		w.beats[i-1] = b
		return
	}
	i := n
	for i > 0 && w.beats[i-1].t > b.t {
		i--
	}
	if cap(w.beats) == n {
		// Grow by doubling up to the limit: most destinations see few
		// connections and keep small windows.
		nb := make([]beat, n, min(max(2*n, 2), limit))
		copy(nb, w.beats)
		w.beats = nb
	}
	w.beats = w.beats[:n+1]
	copy(w.beats[i+1:], w.beats[i:n])
	w.beats[i] = b
}

// rebase moves the base so that ms fits, dropping the beats that then do
// not (more than about 24 days before the newest).
func (w *window) rebase(ms int64) {
	w.linear()
	newest := ms
	if n := len(w.beats); n > 0 {
		newest = max(newest, w.base+int64(w.beats[n-1].t))
	}
	oldest := newest - math.MaxInt32
	base := max(ms, oldest)
	for _, b := range w.beats {
		if t := w.base + int64(b.t); t >= oldest {
			base = min(base, t)
			break
		}
	}
	kept := w.beats[:0]
	for _, b := range w.beats {
		if t := w.base + int64(b.t); t >= oldest {
			kept = append(kept, beat{uint32(t - base), b.size})
		}
	}
	w.beats = kept
	w.base = base
}

// BeaconStats is the evidence of a beacon score (see docs/devices.md).
type BeaconStats struct {
	// Connections is the number of connections in the window; Events
	// those more than the minimum gap apart.
	Connections, Events int
	// Period is the median interval between events.
	Period time.Duration
	// Jitter is the median distance of an interval from the nearest
	// whole number of periods, as a fraction of the period.
	Jitter float64
	// Missed is the fraction of intervals that span two periods or more.
	Missed float64
	// SizeMedian and SizeMAD are the median of the bytes sent per
	// connection and their median absolute deviation.
	SizeMedian, SizeMAD uint64
	// IntervalScore, SizeScore and Confidence are the parts of Score.
	IntervalScore, SizeScore, Confidence float64
	// Score is Confidence × (0.7 × IntervalScore + 0.3 × SizeScore).
	Score float64
	// First and Last are the times of the window's first and last events.
	First, Last time.Time
}

// scratch holds the buffers of a scoring, reused across destinations.
type scratch struct {
	beats     []beat
	times     []int64
	intervals []float64
	devs      []float64
	sizes     []float64
}

// median returns the median of v, reordering v: the k-th smallest by
// selection, not a sort (a sweep takes several medians of every window).
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return 0
	}
	hi := nth(v, n/2)
	if n%2 == 1 {
		return hi
	}
	// nth leaves the n/2 smallest values before index n/2.
	return (slices.Max(v[:n/2]) + hi) / 2
}

// nth returns the k-th smallest value of v (from 0), reordering v so
// that the values before index k are not greater and those after are not
// smaller (quickselect, median-of-three pivots).
func nth(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for hi-lo > 8 {
		mid := lo + (hi-lo)/2
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for v[j] > pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	// A few values left: insertion sort them.
	for i := lo + 1; i <= hi; i++ {
		for j := i; j > lo && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[k]
}

// scoreBeacon scores the beats of a window (see docs/devices.md). It
// reports false when there are too few events to score.
func scoreBeacon(w *window, cfg *BeaconConfig, s *scratch) (BeaconStats, bool) {
	var st BeaconStats
	s.beats = s.beats[:0]
	for i := range w.beats {
		s.beats = append(s.beats, w.at(i))
	}
	st.Connections = len(s.beats)
	gap := cfg.MinGap.Milliseconds()
	s.times = s.times[:0]
	s.sizes = s.sizes[:0]
	for i, b := range s.beats {
		t := w.base + int64(b.t)
		if i == 0 || t-s.times[len(s.times)-1] >= max(gap, 1) {
			s.times = append(s.times, t)
		}
		s.sizes = append(s.sizes, float64(b.size))
	}
	st.Events = len(s.times)
	if st.Events < cfg.MinEvents {
		return st, false
	}
	st.First = time.UnixMilli(s.times[0]).UTC()
	st.Last = time.UnixMilli(s.times[len(s.times)-1]).UTC()
	s.intervals = s.intervals[:0]
	for i := 1; i < len(s.times); i++ {
		s.intervals = append(s.intervals, float64(s.times[i]-s.times[i-1]))
	}
	m := len(s.intervals)
	// The period: the median of the intervals near the shortest ones (up
	// to 1.5 times the lower quartile), so that missed beats (intervals
	// of two or more periods) do not pull it up.
	s.devs = append(s.devs[:0], s.intervals...)
	q1 := nth(s.devs, (len(s.devs)-1)/4)
	short := s.devs[:0]
	for _, d := range s.devs {
		if d <= 1.5*q1 {
			short = append(short, d)
		}
	}
	period := median(short)
	if period <= 0 {
		return st, false
	}
	st.Period = time.Duration(period * float64(time.Millisecond))
	s.devs = s.devs[:0]
	missed := 0
	for _, d := range s.intervals {
		k := math.Max(1, math.Round(d/period))
		if k > 1 {
			missed++
		}
		s.devs = append(s.devs, math.Abs(d-k*period)/period)
	}
	st.Jitter = median(s.devs)
	st.Missed = float64(missed) / float64(m)
	st.IntervalScore = math.Max(0, 1-st.Jitter/cfg.MaxJitter) * (1 - st.Missed/2)

	sizeMed := median(s.sizes)
	for i, v := range s.sizes {
		s.sizes[i] = math.Abs(v - sizeMed)
	}
	sizeMAD := median(s.sizes)
	st.SizeMedian, st.SizeMAD = uint64(sizeMed), uint64(sizeMAD)
	switch {
	case sizeMed > 0:
		st.SizeScore = math.Max(0, 1-2*sizeMAD/sizeMed)
	case sizeMAD == 0:
		st.SizeScore = 1
	}
	st.Confidence = math.Min(1, float64(st.Events-1)/float64(cfg.FullEvents-1))
	st.Score = st.Confidence * (0.7*st.IntervalScore + 0.3*st.SizeScore)
	return st, true
}
