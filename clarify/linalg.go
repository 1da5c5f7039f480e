package clarify

import (
	"math"
)

// The Kernel SHAP regression is small and dense: at most a few hundred
// unknowns and a couple of thousand weighted rows. Its normal equations are
// solved by Cholesky, and by a pseudo-inverse (Jacobi eigendecomposition)
// where they are singular, as shap falls back from np.linalg.inv to
// np.linalg.pinv.

// singularTol is the pivot (or eigenvalue), relative to the largest
// diagonal entry, under which the normal matrix counts as singular.
const singularTol = 1e-12

// solveSPD solves A X = B for a symmetric positive semi-definite A (p×p,
// row-major) and B (p×d, row-major), returning X (p×d). A and B are not
// changed.
func solveSPD(a []float64, p int, b []float64, d int) []float64 {
	if x, ok := cholSolve(a, p, b, d); ok {
		return x
	}
	return pinvSolve(a, p, b, d)
}

// cholSolve solves by Cholesky factorisation; ok is false when a pivot is
// not clearly positive.
func cholSolve(a []float64, p int, b []float64, d int) ([]float64, bool) {
	maxDiag := 0.0
	for i := 0; i < p; i++ {
		maxDiag = math.Max(maxDiag, a[i*p+i])
	}
	if maxDiag <= 0 {
		return nil, false
	}
	l := make([]float64, p*p)
	for j := 0; j < p; j++ {
		s := a[j*p+j]
		lj := l[j*p : j*p+j]
		for _, v := range lj {
			s -= v * v
		}
		if s <= singularTol*maxDiag {
			return nil, false
		}
		djj := math.Sqrt(s)
		l[j*p+j] = djj
		for i := j + 1; i < p; i++ {
			s := a[i*p+j]
			li := l[i*p : i*p+j]
			for k, v := range lj {
				s -= li[k] * v
			}
			l[i*p+j] = s / djj
		}
	}
	x := make([]float64, p*d)
	copy(x, b)
	// Forward: L y = b.
	for i := 0; i < p; i++ {
		for c := 0; c < d; c++ {
			s := x[i*d+c]
			for k := 0; k < i; k++ {
				s -= l[i*p+k] * x[k*d+c]
			}
			x[i*d+c] = s / l[i*p+i]
		}
	}
	// Backward: Lᵀ x = y.
	for i := p - 1; i >= 0; i-- {
		for c := 0; c < d; c++ {
			s := x[i*d+c]
			for k := i + 1; k < p; k++ {
				s -= l[k*p+i] * x[k*d+c]
			}
			x[i*d+c] = s / l[i*p+i]
		}
	}
	return x, true
}

// pinvSolve solves by the Moore-Penrose pseudo-inverse: the minimum-norm
// least-squares solution, eigenvalues under singularTol times the largest
// dropped.
func pinvSolve(a []float64, p int, b []float64, d int) []float64 {
	vals, vecs := symEigen(a, p)
	maxEig := 0.0
	for _, v := range vals {
		maxEig = math.Max(maxEig, math.Abs(v))
	}
	x := make([]float64, p*d)
	if maxEig == 0 {
		return x
	}
	// x = V diag(1/λ) Vᵀ b over the kept eigenvalues.
	t := make([]float64, d)
	for k, lam := range vals {
		if math.Abs(lam) <= singularTol*maxEig {
			continue
		}
		for c := range t {
			t[c] = 0
		}
		for i := 0; i < p; i++ {
			v := vecs[i*p+k]
			for c := 0; c < d; c++ {
				t[c] += v * b[i*d+c]
			}
		}
		for i := 0; i < p; i++ {
			v := vecs[i*p+k] / lam
			for c := 0; c < d; c++ {
				x[i*d+c] += v * t[c]
			}
		}
	}
	return x
}

// symEigen diagonalises a symmetric matrix by cyclic Jacobi rotations:
// A = V diag(vals) Vᵀ, V's columns the eigenvectors.
func symEigen(a []float64, p int) (vals, vecs []float64) {
	m := append([]float64(nil), a...)
	v := make([]float64, p*p)
	for i := 0; i < p; i++ {
		v[i*p+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off, norm := 0.0, 0.0
		for i := 0; i < p; i++ {
			for j := 0; j < p; j++ {
				if i != j {
					off += m[i*p+j] * m[i*p+j]
				}
				norm += m[i*p+j] * m[i*p+j]
			}
		}
		if off <= 1e-30*norm || off == 0 {
			break
		}
		for q := 0; q < p; q++ {
			for r := q + 1; r < p; r++ {
				apq := m[q*p+r]
				if apq == 0 {
					continue
				}
				theta := (m[r*p+r] - m[q*p+q]) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := 0; k < p; k++ { // columns q and r
					mkq, mkr := m[k*p+q], m[k*p+r]
					m[k*p+q] = c*mkq - s*mkr
					m[k*p+r] = s*mkq + c*mkr
				}
				for k := 0; k < p; k++ { // rows q and r
					mqk, mrk := m[q*p+k], m[r*p+k]
					m[q*p+k] = c*mqk - s*mrk
					m[r*p+k] = s*mqk + c*mrk
				}
				for k := 0; k < p; k++ {
					vkq, vkr := v[k*p+q], v[k*p+r]
					v[k*p+q] = c*vkq - s*vkr
					v[k*p+r] = s*vkq + c*vkr
				}
			}
		}
	}
	vals = make([]float64, p)
	for i := range vals {
		vals[i] = m[i*p+i]
	}
	return vals, v
}
