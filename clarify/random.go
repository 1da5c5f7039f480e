package clarify

// numpyRand reproduces the draws of numpy's legacy global generator
// (np.random.seed(s), then np.random.choice with p and np.random.permutation)
// that shap's KernelExplainer makes, so that a Seed samples the coalitions
// that shap samples after np.random.seed(Seed).
type numpyRand struct {
	mt  [624]uint32
	pos int
}

// newNumpyRand seeds as np.random.seed(seed) does for a seed in
// [0, 2^32): Mersenne Twister's init_genrand.
func newNumpyRand(seed uint32) *numpyRand {
	r := &numpyRand{}
	r.mt[0] = seed
	for i := 1; i < len(r.mt); i++ {
		prev := r.mt[i-1]
		r.mt[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	r.pos = len(r.mt)
	return r
}

func (r *numpyRand) next() uint32 {
	const n, m = 624, 397
	const upper, lower, matrixA = 0x80000000, 0x7fffffff, 0x9908b0df
	if r.pos >= n {
		for i := 0; i < n; i++ {
			y := r.mt[i]&upper | r.mt[(i+1)%n]&lower
			v := r.mt[(i+m)%n] ^ y>>1
			if y&1 != 0 {
				v ^= matrixA
			}
			r.mt[i] = v
		}
		r.pos = 0
	}
	y := r.mt[r.pos]
	r.pos++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	y ^= y >> 18
	return y
}

// float64 is np.random.random_sample(): 53 random bits in [0, 1).
func (r *numpyRand) float64() float64 {
	a, b := r.next()>>5, r.next()>>6
	return (float64(a)*67108864 + float64(b)) / 9007199254740992
}

// interval is numpy's random_interval(max): uniform in [0, max] by masked
// rejection.
func (r *numpyRand) interval(max uint32) uint32 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := r.next() & mask; v <= max {
			return v
		}
	}
}

// permutation is np.random.permutation(n): a Fisher-Yates shuffle of
// 0..n-1 from the end.
func (r *numpyRand) permutation(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(r.interval(uint32(i)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// choice is np.random.choice(len(p), size, p=p): draws by inverse CDF,
// the CDF normalised by its last value.
func (r *numpyRand) choice(p []float64, size int) []int {
	cdf := make([]float64, len(p))
	s := 0.0
	for i, v := range p {
		s += v
		cdf[i] = s
	}
	last := cdf[len(cdf)-1]
	for i := range cdf {
		cdf[i] /= last
	}
	out := make([]int, size)
	for k := range out {
		u := r.float64()
		// searchsorted(side="right"): the number of cdf values <= u.
		lo, hi := 0, len(cdf)
		for lo < hi {
			mid := (lo + hi) / 2
			if cdf[mid] <= u {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		out[k] = lo
	}
	return out
}

// pairwiseSum adds as numpy's np.sum does for a contiguous float64 array
// (pairwise, 8 accumulators per block of up to 128), so that normalised
// weights match numpy's to the last bit.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		s := 0.0
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for k := range r {
				r[k] += a[i+k]
			}
		}
		s := (r[0] + r[1] + (r[2] + r[3])) + (r[4] + r[5] + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}
