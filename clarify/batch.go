package clarify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// requestsPerPredictor is how many batches one instance is sent at once.
const requestsPerPredictor = 2

// rowWriter appends row r of the synthetic data set, with its line end, to
// buf.
type rowWriter func(buf []byte, r int) []byte

// encoder writes feature rows in the request's content type.
type encoder struct {
	jsonLines bool
	template  []string // ContentTemplate split at $features; nil: the bare array
}

func newEncoder(contentType, contentTemplate string) encoder {
	e := encoder{jsonLines: contentType == mimeJSONLines}
	if e.jsonLines && contentTemplate != "" {
		e.template = strings.Split(contentTemplate, "$features")
	}
	return e
}

// encode renders each feature value as it appears in a row.
func (e encoder) encode(row []value) []string {
	out := make([]string, len(row))
	for i, v := range row {
		if e.jsonLines {
			out[i] = v.js
		} else {
			out[i] = v.csvField()
		}
	}
	return out
}

// appendRow appends a row whose feature i is pick(i).
func (e encoder) appendRow(buf []byte, n int, pick func(i int) string) []byte {
	// fields writes the features separated by commas: a CSV row, or the
	// inside of a JSON array.
	fields := func(buf []byte) []byte {
		for i := 0; i < n; i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, pick(i)...)
		}
		return buf
	}
	if !e.jsonLines {
		return append(fields(buf), '\n')
	}
	arr := func(buf []byte) []byte {
		return append(fields(append(buf, '[')), ']')
	}
	if e.template == nil {
		buf = arr(buf)
	} else {
		for k, part := range e.template {
			if k > 0 {
				buf = arr(buf)
			}
			buf = append(buf, part...)
		}
	}
	return append(buf, '\n')
}

// maxRowLen bounds the length of a synthetic row: each feature at its
// longest.
func (e encoder) maxRowLen(baseEnc [][]string, jobs []*job) int {
	n := 0
	for f := range baseEnc[0] {
		l := 0
		for _, b := range baseEnc {
			l = max(l, len(b[f]))
		}
		for _, j := range jobs {
			l = max(l, len(j.xEnc[f]))
		}
		n += l + 1
	}
	for _, part := range e.template {
		n += len(part) + 2
	}
	return n + 2
}

// batchLimits bound one request to the model.
type batchLimits struct {
	records int // 0: no bound
	bytes   int
}

// predictRows sends rows 0..total-1 (written by write, each at most about
// maxRow bytes) to the predictors in batches within limits, several at once
// across the predictors, and returns each row's scores. On a Predictor's failure it returns that error
// unchanged; past ctx's deadline a KindTimeout error.
func predictRows(ctx context.Context, preds []Predictor, contentType, accept string, total int, write rowWriter, maxRow int,
	limits batchLimits, out *outputReader) ([][]float64, error) {
	scores := make([][]float64, total)
	if total == 0 {
		return scores, nil
	}
	if len(preds) > 1 && limits.records == 0 {
		// Without MaxRecordCount, spread the rows over every instance.
		limits.records = (total + len(preds) - 1) / len(preds)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	type batch struct {
		start, count int
		body         []byte
	}
	batches := make(chan batch, len(preds)*requestsPerPredictor)
	var (
		predicted atomic.Int64
		once      sync.Once
		firstErr  error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}

	// Produce the batches as the workers take them.
	go func() {
		defer close(batches)
		var buf, row []byte
		start := 0
		flush := func(end int) bool {
			b := batch{start: start, count: end - start, body: buf}
			buf, start = nil, end
			select {
			case batches <- b:
				return true
			case <-runCtx.Done():
				return false
			}
		}
		for r := 0; r < total; r++ {
			row = write(row[:0], r)
			if len(row) > limits.bytes {
				fail(badRequest("a synthetic record is %d bytes, more than the %d bytes MaxPayloadInMB allows in one request", len(row), limits.bytes))
				return
			}
			if r > start && (len(buf)+len(row) > limits.bytes || (limits.records > 0 && r-start >= limits.records)) {
				if !flush(r) {
					return
				}
			}
			if buf == nil {
				n := total - r
				if limits.records > 0 {
					n = min(n, limits.records)
				}
				buf = make([]byte, 0, min(limits.bytes, n*max(maxRow, len(row))))
			}
			buf = append(buf, row...)
		}
		flush(total)
	}()

	var wg sync.WaitGroup
	for _, p := range preds {
		for range requestsPerPredictor {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range batches {
					if runCtx.Err() != nil {
						continue // drain
					}
					body, ct, err := p(runCtx, b.body, contentType, accept)
					if err != nil {
						fail(err)
						continue
					}
					if err := readScores(body, outputFormat(ct, accept), b.count, out, scores[b.start:b.start+b.count]); err != nil {
						fail(err)
						continue
					}
					predicted.Add(int64(b.count))
				}
			}()
		}
	}
	wg.Wait()

	if firstErr == nil && predicted.Load() == int64(total) {
		return scores, nil
	}
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &Error{Kind: KindTimeout, Err: err, Msg: fmt.Sprintf(
				"the explanation did not finish within the time limit: %d of %d synthetic rows predicted; lower NumberOfSamples or raise MaxRecordCount",
				predicted.Load(), total)}
		}
		return nil, err
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("only %d of %d synthetic rows were predicted", predicted.Load(), total)
	}
	return nil, firstErr
}

// readScores parses a batch's answer into its rows' scores.
func readScores(body []byte, format string, want int, out *outputReader, dst [][]float64) error {
	rows, err := outputRows(body, format)
	if err != nil {
		return &Error{Kind: KindModelOutput, Msg: "reading the model's predictions of synthetic records", Err: err}
	}
	if len(rows) != want {
		return modelOutput("the model answered %d rows for a batch of %d synthetic records", len(rows), want)
	}
	for i, row := range rows {
		s, err := out.scores(row)
		if err != nil {
			return &Error{Kind: KindModelOutput, Msg: "reading the model's prediction of a synthetic record", Err: err}
		}
		dst[i] = s
	}
	return nil
}

// rowWriter writes synthetic row r: baseline rows first, then each job's
// coalitions, each against every baseline row.
func (e *Explainer) rowWriter(enc encoder, nf int, baseEnc [][]string, jobs []*job) rowWriter {
	nb := len(baseEnc)
	var withCoal []*job
	for _, j := range jobs {
		if j.coal != nil {
			withCoal = append(withCoal, j)
		}
	}
	fromX := make([]bool, nf)
	var cur *job
	curK := -1
	return func(buf []byte, r int) []byte {
		if r < nb {
			b := baseEnc[r]
			return enc.appendRow(buf, nf, func(i int) string { return b[i] })
		}
		i := sort.Search(len(withCoal), func(i int) bool { return withCoal[i].start > r }) - 1
		j := withCoal[i]
		k, bi := (r-j.start)/nb, (r-j.start)%nb
		if j != cur || k != curK {
			clear(fromX)
			for v, m := range j.coal.mask(k) {
				if m == 1 {
					fromX[j.varying[v]] = true
				}
			}
			cur, curK = j, k
		}
		b := baseEnc[bi]
		return enc.appendRow(buf, nf, func(i int) string {
			if fromX[i] {
				return j.xEnc[i]
			}
			return b[i]
		})
	}
}
