// Package example holds sagehost's quickstart XGBoost model: a small
// regression of house prices trained by ../testdata/make_golden.py on
// synthetic data, packaged as SageMaker expects model data, so that the
// sagehost binary can write it out and serve it at start.
//
// The model predicts a house's price in thousands of dollars from four
// features, in this order: floor area (m²), bedrooms, age (years) and
// distance to the city centre (km). See README.md.
package example

import _ "embed"

// ModelTarGz is model.tar.gz: a single file, xgboost-model, an XGBoost 1.7
// model in UBJSON.
//
//go:embed model.tar.gz
var ModelTarGz []byte

// SampleCSV is one row to send with Content-Type text/csv: a 120 m²,
// 3-bedroom, 15-year-old house 8.5 km from the centre.
//
//go:embed sample.csv
var SampleCSV string
