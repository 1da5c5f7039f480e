package xgboost

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Matrix is a dense batch of feature rows, row-major: row r is
// Values[r*Cols:(r+1)*Cols]. NaN marks a missing value; rows shorter than
// the model's features (Cols < NumFeature) have the rest missing, as in
// XGBoost.
type Matrix struct {
	Rows, Cols int
	Values     []float32
}

// NewMatrix copies rows of equal or unequal length into a Matrix as wide as
// the longest; the cells a shorter row lacks are missing.
func NewMatrix(rows [][]float32) Matrix {
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	m := Matrix{Rows: len(rows), Cols: cols, Values: make([]float32, len(rows)*cols)}
	for i, r := range rows {
		dst := m.Values[i*cols : (i+1)*cols]
		copy(dst, r)
		for j := len(r); j < cols; j++ {
			dst[j] = nan32
		}
	}
	return m
}

var nan32 = float32(math.NaN())

// PredictOptions choose what Predict computes.
type PredictOptions struct {
	// OutputMargin returns untransformed margins (XGBoost's
	// output_margin=True): NumGroups values per row.
	OutputMargin bool
	// AllTrees uses every tree even when the model's best_ntree_limit
	// attribute says fewer (SageMaker's container honours it; XGBoost's
	// Booster.predict does not by default).
	AllTrees bool
	// Threads bounds the goroutines a large batch is split over:
	// 0 means GOMAXPROCS, 1 means the calling goroutine only.
	Threads int
}

// Predictions are a batch's results, row-major: Width values per row (1 for
// most objectives, num_class for multi:softprob and for margins of
// multi-class models).
type Predictions struct {
	Rows, Width int
	Values      []float32
}

// Row returns row i's values.
func (p *Predictions) Row(i int) []float32 { return p.Values[i*p.Width : (i+1)*p.Width] }

// FeatureCountError reports rows with more features than the model has.
type FeatureCountError struct {
	Got, Want int
}

func (e *FeatureCountError) Error() string {
	return fmt.Sprintf("the data has %d features, more than the model's %d", e.Got, e.Want)
}

// blockCells bounds the scratch space of a block: blockRows rows of
// NumFeature values.
const blockCells = 1 << 14

// parallelMinRows is the smallest batch worth splitting across goroutines.
const parallelMinRows = 512

// rowSource is a batch of rows in some layout.
type rowSource interface {
	numRows() int
	// fill writes row r's values into scratch (NumFeature values, all NaN
	// on entry), leaving the features the row lacks NaN.
	fill(r int, scratch []float32)
	// reset makes scratch all NaN again after fill(r, scratch).
	reset(r int, scratch []float32)
}

func (x Matrix) numRows() int { return x.Rows }

func (x Matrix) fill(r int, scratch []float32) {
	copy(scratch, x.Values[r*x.Cols:(r+1)*x.Cols])
}

func (x Matrix) reset(r int, scratch []float32) { fillNaN(scratch[:x.Cols]) }

func fillNaN(v []float32) {
	for i := range v {
		v[i] = nan32
	}
}

// Predict computes the predictions for a batch.
func (m *Model) Predict(x Matrix, opt PredictOptions) (*Predictions, error) {
	if x.Rows < 0 || x.Cols < 0 || len(x.Values) < x.Rows*x.Cols {
		return nil, fmt.Errorf("matrix of %d×%d has %d values", x.Rows, x.Cols, len(x.Values))
	}
	if x.Cols > m.numFeature {
		return nil, &FeatureCountError{Got: x.Cols, Want: m.numFeature}
	}
	return m.predict(x, opt), nil
}

// predict computes the predictions for rows whose feature indexes are
// known to be below NumFeature.
func (m *Model) predict(x rowSource, opt PredictOptions) *Predictions {
	rows, g := x.numRows(), m.numGroups
	out := make([]float32, rows*g)
	ntrees := m.defaultTrees
	if opt.AllTrees {
		ntrees = len(m.trees)
	}
	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	threads = min(threads, rows/parallelMinRows+1)
	if threads <= 1 {
		m.predictRange(x, out, 0, rows, ntrees)
	} else {
		var wg sync.WaitGroup
		chunk := (rows + threads - 1) / threads
		for r0 := 0; r0 < rows; r0 += chunk {
			r1 := min(r0+chunk, rows)
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.predictRange(x, out, r0, r1, ntrees)
			}()
		}
		wg.Wait()
	}
	p := &Predictions{Rows: rows, Width: g, Values: out}
	if !opt.OutputMargin {
		m.obj.apply(out, rows, g)
		p.Width = m.obj.outputWidth(g)
		p.Values = out[:rows*p.Width]
	}
	return p
}

// predictRange writes the margins of rows [r0, r1) into out. Rows go
// through the trees a block at a time, the block's rows side by side in
// one slice: they and their outputs stay in cache while the trees stream
// past, and each row's sum still adds its trees in order.
func (m *Model) predictRange(x rowSource, out []float32, r0, r1, ntrees int) {
	g, nf := m.numGroups, m.numFeature
	for r := r0; r < r1; r++ {
		copy(out[r*g:(r+1)*g], m.baseMargin)
	}
	bs := min(max(blockCells/nf, 1), 64)
	var scratch []float32
	full, direct := x.(Matrix)
	direct = direct && full.Cols == nf
	if !direct {
		scratch = make([]float32, bs*nf)
		fillNaN(scratch)
	}
	for b0 := r0; b0 < r1; b0 += bs {
		b1 := min(b0+bs, r1)
		var vals []float32
		if direct {
			vals = full.Values[b0*nf : b1*nf]
		} else {
			for i := range b1 - b0 {
				x.fill(b0+i, scratch[i*nf:(i+1)*nf])
			}
			vals = scratch[:(b1-b0)*nf]
		}
		if m.linear != nil {
			m.predictLinear(vals, out[b0*g:])
		} else {
			for _, t := range m.trees[:ntrees] {
				m.addLeaves(t, vals, out[b0*g+int(t.group):], g)
			}
		}
		if !direct {
			for i := range b1 - b0 {
				x.reset(b0+i, scratch[i*nf:(i+1)*nf])
			}
		}
	}
}

// addLeaves walks one tree for each row of a block (vals, NumFeature
// values per row) and adds the leaf's value to the row's output (out[i*g]
// for row i). Eight rows walk at once: their steps are independent, so the
// processor overlaps their loads, and a step has no branch to mispredict.
func (m *Model) addLeaves(t treeRef, vals []float32, out []float32, g int) {
	lv, nodes, nf := m.leafValue, m.nodes, m.numFeature
	rows := len(vals) / nf
	if m.cats != nil {
		for i := range rows {
			n, row := t.root, vals[i*nf:(i+1)*nf]
			for range t.depth {
				n = m.stepCategorical(n, row)
			}
			out[i*g] += lv[n]
		}
		return
	}
	i := 0
	for ; i+8 <= rows; i += 8 {
		o0 := i * nf
		n0, n1, n2, n3, n4, n5, n6, n7 := t.root, t.root, t.root, t.root, t.root, t.root, t.root, t.root
		for range t.depth {
			n0 = step(nodes, n0, vals, o0)
			n1 = step(nodes, n1, vals, o0+nf)
			n2 = step(nodes, n2, vals, o0+2*nf)
			n3 = step(nodes, n3, vals, o0+3*nf)
			n4 = step(nodes, n4, vals, o0+4*nf)
			n5 = step(nodes, n5, vals, o0+5*nf)
			n6 = step(nodes, n6, vals, o0+6*nf)
			n7 = step(nodes, n7, vals, o0+7*nf)
		}
		out[i*g] += lv[n0]
		out[(i+1)*g] += lv[n1]
		out[(i+2)*g] += lv[n2]
		out[(i+3)*g] += lv[n3]
		out[(i+4)*g] += lv[n4]
		out[(i+5)*g] += lv[n5]
		out[(i+6)*g] += lv[n6]
		out[(i+7)*g] += lv[n7]
	}
	for ; i < rows; i++ {
		n := t.root
		for range t.depth {
			n = step(nodes, n, vals, i*nf)
		}
		out[i*g] += lv[n]
	}
}

// step moves from node i to the child the row's value leads to (a leaf
// stays put), for trees without categorical splits. A missing value
// becomes -inf at a split whose missing values go left and +inf at one
// whose go right (the default-left flag is the float's sign bit), which
// the threshold comparison then sends the right way.
func step(nodes []node, i int32, vals []float32, off int) int32 {
	n := &nodes[i]
	v := vals[off+int(n.info&featureMask)]
	if v != v {
		v = math.Float32frombits(0x7f800000 | n.info&flagDefaultLeft)
	}
	var right int32
	if v >= n.cond {
		right = 1 // compiled to a flag move, not a branch
	}
	return n.left + right
}

// stepCategorical is step for trees that may have categorical splits.
func (m *Model) stepCategorical(i int32, row []float32) int32 {
	n := &m.nodes[i]
	v := row[n.info&featureMask]
	switch {
	case v != v:
		if n.info&flagDefaultLeft != 0 {
			return n.left
		}
		return n.left + 1
	case n.info&flagCategorical != 0:
		if m.cats[math.Float32bits(n.cond)].goesRight(v) {
			return n.left + 1
		}
		return n.left
	case v >= n.cond:
		return n.left + 1
	}
	return n.left
}

// predictLinear is gblinear's prediction: per group, bias plus base margin,
// then weight times value for each present feature in order.
func (m *Model) predictLinear(vals []float32, out []float32) {
	g, nf := m.numGroups, m.numFeature
	bias := m.linear[nf*g:]
	for i := range len(vals) / nf {
		row := vals[i*nf : (i+1)*nf]
		for k := 0; k < g; k++ {
			psum := bias[k] + out[i*g+k]
			for j, v := range row {
				if v == v {
					psum += float32(v * m.linear[j*g+k]) // rounded before the add, as XGBoost (no FMA)
				}
			}
			out[i*g+k] = psum
		}
	}
}
