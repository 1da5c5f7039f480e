package clarify

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Kernel SHAP, following the open-source shap library's KernelExplainer
// (shap/explainers/_kernel.py):
//
//   - Only the features whose value differs from some baseline row take
//     part ("varying" features, M of them); the others get 0.
//   - M = 0: all zero. M = 1: that feature gets f(x) − E[f(baseline)].
//   - Otherwise n = NumberOfSamples, or 2M + 2048, capped at 2^M − 2. The
//     coalition sizes 1..⌈(M−1)/2⌉ (each paired with its complement size
//     M−s while s < M−s) are weighted by the Shapley kernel; sizes whose
//     every subset fits the remaining budget are enumerated completely, in
//     order from the smallest, and the rest of the budget is sampled: a
//     size drawn by weight, a random subset of it (and its complement),
//     repeats adding weight to the first draw instead of a row.
//   - The model is evaluated on each coalition z against every baseline
//     row b (features in z from the record, the others from b) and
//     averaged over b.
//   - The link (identity, or logit with UseLogit) is applied to those
//     averages, to f(x) and to E[f(baseline)]; the weighted least squares
//     regression of the linked averages on the coalition masks is solved
//     with the efficiency constraint Σφ = link(f(x)) − link(E[f(b)])
//     substituted for the last feature.
//
// With a Seed the random draws are numpy's after np.random.seed(Seed), so
// the same coalitions are drawn as by shap. shap's L1 feature selection
// (l1_reg="auto" with under 20 % of the coalitions evaluated) is not done:
// every varying feature gets its regression coefficient.

// defaultSamples is KernelExplainer's nsamples="auto" beyond 2M.
const defaultSamples = 2048

// coalitions are the masks over the varying features that Kernel SHAP
// evaluates, with their kernel weights.
type coalitions struct {
	m       int       // varying features
	n       int       // coalitions
	masks   []byte    // n×m, 1 = the feature's value comes from the record
	weights []float64 // n
}

func (c *coalitions) mask(k int) []byte { return c.masks[k*c.m : (k+1)*c.m] }

func (c *coalitions) add(mask []byte, w float64) {
	c.masks = append(c.masks, mask...)
	c.weights = append(c.weights, w)
	c.n++
}

// sampleSize is n_samples for m varying features: NumberOfSamples (0 =
// 2m + 2048), capped at 2^m − 2.
func sampleSize(m, numberOfSamples int) int {
	n := numberOfSamples
	if n <= 0 {
		n = 2*m + defaultSamples
	}
	if m <= 30 {
		n = min(n, 1<<m-2)
	}
	return n
}

// makeCoalitions builds the coalitions for m ≥ 2 varying features as
// KernelExplainer does, drawing from rng.
func makeCoalitions(m, numberOfSamples int, rng *numpyRand) *coalitions {
	nsamples := sampleSize(m, numberOfSamples)
	c := &coalitions{m: m, masks: make([]byte, 0, nsamples*m), weights: make([]float64, 0, nsamples)}

	numSubsetSizes := m / 2  // ceil((m-1)/2)
	numPaired := (m - 1) / 2 // floor((m-1)/2)
	weightVector := make([]float64, numSubsetSizes)
	for i := 1; i <= numSubsetSizes; i++ {
		weightVector[i-1] = float64(m-1) / float64(i*(m-i))
	}
	for i := 0; i < numPaired; i++ {
		weightVector[i] *= 2
	}
	scale(weightVector, 1, pairwiseSum(weightVector))

	// Enumerate the sizes whose every subset fits in the budget.
	numFull := 0
	samplesLeft := float64(nsamples)
	remaining := append([]float64(nil), weightVector...)
	mask := make([]byte, m)
	for s := 1; s <= numSubsetSizes; s++ {
		nsubsets := binom(m, s)
		if s <= numPaired {
			nsubsets *= 2
		}
		if samplesLeft*remaining[s-1]/nsubsets < 1.0-1e-8 {
			break
		}
		numFull++
		samplesLeft -= nsubsets
		if remaining[s-1] < 1.0 {
			scale(remaining, 1, 1-remaining[s-1])
		}
		w := weightVector[s-1] / binom(m, s)
		if s <= numPaired {
			w /= 2
		}
		combinations(m, s, func(idx []int) {
			clear(mask)
			for _, i := range idx {
				mask[i] = 1
			}
			c.add(mask, w)
			if s <= numPaired {
				complement(mask)
				c.add(mask, w)
			}
		})
	}

	// Sample the rest of the budget from the sizes left.
	nfixed := c.n
	left := nsamples - c.n
	if numFull != numSubsetSizes {
		rw := append([]float64(nil), weightVector...)
		for i := 0; i < numPaired; i++ {
			rw[i] /= 2 // two samples are drawn for each of these
		}
		rw = rw[numFull:]
		scale(rw, 1, pairwiseSum(rw))
		draws := rng.choice(rw, 4*max(left, 0))
		used := make(map[string]int)
		for pos := 0; left > 0 && pos < len(draws); pos++ {
			s := draws[pos] + numFull + 1
			clear(mask)
			for _, i := range rng.permutation(m)[:s] {
				mask[i] = 1
			}
			key := string(mask)
			first, seen := used[key]
			if !seen {
				used[key] = c.n
				left--
				c.add(mask, 1)
			} else {
				c.weights[first]++
			}
			if left > 0 && s <= numPaired {
				if !seen {
					complement(mask)
					left--
					c.add(mask, 1)
				} else {
					c.weights[first+1]++
				}
			}
		}
		weightLeft := pairwiseSum(weightVector[numFull:])
		scale(c.weights[nfixed:], weightLeft, pairwiseSum(c.weights[nfixed:]))
	}
	return c
}

// scale multiplies v by num/den, as numpy's v *= num / den.
func scale(v []float64, num, den float64) {
	if num == 1 {
		for i := range v {
			v[i] /= den
		}
		return
	}
	f := num / den
	for i := range v {
		v[i] *= f
	}
}

func complement(mask []byte) {
	for i := range mask {
		mask[i] ^= 1
	}
}

// combinations calls f with every s-subset of 0..m-1 in lexicographic order
// (itertools.combinations).
func combinations(m, s int, f func([]int)) {
	idx := make([]int, s)
	for i := range idx {
		idx[i] = i
	}
	for {
		f(idx)
		i := s - 1
		for i >= 0 && idx[i] == m-s+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < s; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// binom is scipy.special.binom for integers: the multiplicative formula
// (exact in the cases that matter) below k = 20, the Beta function above.
func binom(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	if float64(k) > float64(n)/2 {
		k = n - k
	}
	if k < 20 {
		num, den := 1.0, 1.0
		for i := 1; i <= k; i++ {
			num *= float64(i + n - k)
			den *= float64(i)
			if math.Abs(num) > 1e50 {
				num /= den
				den = 1
			}
		}
		return num / den
	}
	lg := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	return math.Exp(lg(float64(n+1)) - lg(float64(k+1)) - lg(float64(n-k+1)))
}

func logit(p float64) float64 { return math.Log(p / (1 - p)) }

// solveKernelSHAP computes the attributions of the m ≥ 2 varying features
// of makeCoalitions for each of d outputs: ey are the linked coalition
// averages (n×d), fx and fnull the linked f(x) and E[f(baseline)]. It
// returns m×d.
func solveKernelSHAP(c *coalitions, ey [][]float64, fx, fnull []float64) [][]float64 {
	m, d := c.m, len(fx)
	phi := make([][]float64, m)
	total := make([]float64, d)
	for j := range total {
		total[j] = fx[j] - fnull[j]
	}
	// Eliminate the last feature: φ_last = total − Σ others. The regression
	// rows are x_k[i] = z_k[i] − z_k[last], y_k = ey_k − fnull − z_k[last]·total.
	p := m - 1
	a := make([]float64, p*p)
	b := make([]float64, p*d)
	x := make([]float64, p)
	y := make([]float64, d)
	for k := 0; k < c.n; k++ {
		w := c.weights[k]
		if w == 0 {
			continue
		}
		z := c.mask(k)
		zl := float64(z[m-1])
		for i := 0; i < p; i++ {
			x[i] = float64(z[i]) - zl
		}
		for j := 0; j < d; j++ {
			y[j] = ey[k][j] - fnull[j] - zl*total[j]
		}
		for i := 0; i < p; i++ {
			if x[i] == 0 {
				continue
			}
			wx := w * x[i]
			row := a[i*p : i*p+p]
			for j := 0; j <= i; j++ {
				row[j] += wx * x[j]
			}
			for j := 0; j < d; j++ {
				b[i*d+j] += wx * y[j]
			}
		}
	}
	for i := 0; i < p; i++ { // mirror the lower triangle
		for j := i + 1; j < p; j++ {
			a[i*p+j] = a[j*p+i]
		}
	}
	sol := solveSPD(a, p, b, d)
	for i := 0; i < p; i++ {
		phi[i] = sol[i*d : (i+1)*d : (i+1)*d]
	}
	last := make([]float64, d)
	for j := range last {
		s := 0.0
		for i := 0; i < p; i++ {
			s += sol[i*d+j]
		}
		last[j] = total[j] - s
	}
	phi[p] = last
	return phi
}

// scoring turns predicted scores into what the regression takes: the
// mean over the baseline rows (each weighing 1/N, as in shap), then the
// link (the identity, or the logit with UseLogit).
type scoring struct {
	d        int
	w        float64
	useLogit bool
}

func (s scoring) mean(rows [][]float64) []float64 {
	m := make([]float64, s.d)
	for _, r := range rows {
		for c := range m {
			m[c] += r[c] * s.w
		}
	}
	return m
}

// link applies the link function to v; what names v in the error, and is
// called only to write one.
func (s scoring) link(v []float64, what func() string) ([]float64, error) {
	if !s.useLogit {
		return v, nil
	}
	out := make([]float64, len(v))
	for i, p := range v {
		if !(p > 0 && p < 1) {
			return nil, modelOutput("UseLogit needs probabilities strictly between 0 and 1, but %s is %v", what(), p)
		}
		out[i] = logit(p)
	}
	return out, nil
}

// attribute computes each job's attributions from the predicted scores
// (the baseline's first, nb rows).
func (e *Explainer) attribute(jobs []*job, scores [][]float64, nb, nf int) error {
	sc := scoring{d: len(scores[0]), w: 1 / float64(nb), useLogit: e.cfg.useLogit()}
	for r, s := range scores {
		if len(s) != sc.d {
			return modelOutput("the model answered %d scores for synthetic record %d but %d for the first", len(s), r+1, sc.d)
		}
	}
	fnull, err := sc.link(sc.mean(scores[:nb]), func() string { return "the mean prediction on the baseline" })
	if err != nil {
		return err
	}
	// The records' regressions are independent: solve them in parallel.
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for n, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[n] = j.solve(scores, nb, nf, fnull, sc)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// solve computes the job's attributions (features × labels); fnull is the
// linked E[f(baseline)].
func (j *job) solve(scores [][]float64, nb, nf int, fnull []float64, sc scoring) error {
	if len(j.fx) != sc.d {
		return modelOutput("the model answered %d scores for record %d but %d for the synthetic records", len(j.fx), j.record+1, sc.d)
	}
	fx, err := sc.link(j.fx, func() string { return fmt.Sprintf("the prediction for record %d", j.record+1) })
	if err != nil {
		return err
	}
	j.phi = make([][]float64, nf)
	for f := range j.phi {
		j.phi[f] = make([]float64, sc.d)
	}
	switch len(j.varying) {
	case 0:
	case 1:
		for c := range sc.d {
			j.phi[j.varying[0]][c] = fx[c] - fnull[c]
		}
	default:
		ey := make([][]float64, j.coal.n)
		what := func() string { return fmt.Sprintf("the mean prediction of a coalition of record %d", j.record+1) }
		for k := range ey {
			start := j.start + k*nb
			if ey[k], err = sc.link(sc.mean(scores[start:start+nb]), what); err != nil {
				return err
			}
		}
		sol := solveKernelSHAP(j.coal, ey, fx, fnull)
		for v, f := range j.varying {
			copy(j.phi[f], sol[v])
		}
	}
	return nil
}
