//! ApiVersions: the advertised ranges.

use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;

use crate::versions::{SUPPORTED_APIS, advertised_range};

/// The ApiVersions answer with `error_code` (0, or 35 for an unknown
/// request version) and every supported range.
pub(crate) fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|&(api, min, max)| {
            let min = advertised_range(api).map_or(min, |r| r.min);
            ApiVersion::default()
                .with_api_key(api as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}
