package xgboost

import "math"

// expf is glibc's expf (sysdeps/ieee754/flt-32/e_expf.c, glibc 2.27 and
// later, from ARM's optimized-routines), the function XGBoost's sigmoid,
// softmax and exp transforms call. It is not correctly rounded in every
// case (it errs by up to 0.502 ulp), so rounding float64 math.Exp would
// differ from XGBoost on about one input in a few hundred; this computes
// the same double-precision steps instead. The multiply-adds are fused as
// in the build glibc picks on CPUs with FMA (x86-64 with AVX2 and FMA,
// and every arm64), checked against libm on all 2^32 inputs.
func expf(x float32) float32 {
	const (
		n         = 1 << 5 // EXP2F_TABLE_BITS = 5
		invLn2N   = 0x1.71547652b82fep+0 * n
		shift     = 0x1.8p+52
		c0        = 0x1.c6af84b912394p-5 / n / n / n
		c1        = 0x1.ebfce50fac4f3p-3 / n / n
		c2        = 0x1.62e42ff0c52d6p-1 / n
		top12_88  = 0x42b // top12(88.0f)
		top12_inf = 0x7f8 // top12(INFINITY)
	)
	bits := math.Float32bits(x)
	if abstop := bits >> 20 & 0x7ff; abstop >= top12_88 {
		switch {
		case bits == 0xff800000: // -inf
			return 0
		case abstop >= top12_inf: // +inf or NaN
			return x + x
		case x > 0x1.62e42ep6: // overflow
			return float32(math.Inf(1))
		case x < -0x1.9fe368p6: // underflow
			return 0
		}
	}
	xd := float64(x)
	// z = x*N/ln2 = k + r with r in [-1/2, 1/2]; the product feeds two
	// additions, which the compiler fuses.
	kd := math.FMA(invLn2N, xd, shift)
	ki := math.Float64bits(kd)
	kd -= shift
	r := math.FMA(invLn2N, xd, -kd)
	// exp(x) = 2^(k/N) * 2^(r/N) ~= s * (c0*r^3 + c1*r^2 + c2*r + 1)
	t := exp2fTab[ki%n] + ki<<(52-5)
	s := math.Float64frombits(t)
	z := math.FMA(c0, r, c1)
	r2 := r * r
	y := math.FMA(c2, r, 1)
	y = math.FMA(z, r2, y)
	return float32(y * s)
}

// exp2fTab[i] = bits(2^(i/32)) - i<<47 (glibc's __exp2f_data.tab).
var exp2fTab = [32]uint64{
	0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
	0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
	0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
	0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
	0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
	0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
	0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
	0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
}

// logf converts base_score to margin space once per model load. It is the
// correctly rounded float32 logarithm; glibc's logf (at most 0.82 ulp off)
// could differ from it on rare inputs, none of the base scores the golden
// models use.
func logf(x float32) float32 { return float32(math.Log(float64(x))) }
