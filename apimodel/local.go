package apimodel

import "regexp"

// localModelDataShapes are the shapes of model data locations
// (ContainerDefinition.ModelDataUrl, S3ModelDataSource.S3Uri) and of data
// capture destinations (DataCaptureConfig.DestinationS3Uri). On AWS they
// must be s3:// or https:// URLs; sagehost also reads model data from, and
// writes captured data to, the machine it runs on, so these shapes accept
// file:// URLs and absolute paths as well.
var localModelDataShapes = []string{"Url", "S3ModelUri", "DestinationS3Uri"}

// localURIPattern is what sagehost accepts besides the model's pattern.
const localURIPattern = `file://[^\n\r]*|/[^\n\r]*`

// allowLocalModelData widens the model data shapes of a parsed model.
func allowLocalModelData(s *Service) {
	for _, name := range localModelDataShapes {
		sh, ok := s.shapes[name]
		if !ok || sh.Pattern == "" {
			continue
		}
		sh.Pattern = sh.Pattern + "|" + localURIPattern
		sh.RE2Pattern = `(?:` + sh.RE2Pattern + `)|` + localURIPattern
		sh.re = regexp.MustCompile(`^(?:` + sh.RE2Pattern + `)$`)
	}
}
