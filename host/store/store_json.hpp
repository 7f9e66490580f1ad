#pragma once
// The JSON shapes of the store's records, shared by `vik-host history|stats --json` and the HTTP
// API (/api/v1/history, /api/v1/stats) so both say the same.

#include "store/leases.hpp"
#include "store/store.hpp"

#include <boost/json/object.hpp>

namespace vik::store {

boost::json::object to_json(const RunRecord &run);
boost::json::object to_json(const Totals &totals);
// {"overall", "per_issue", "per_stage", "per_agent"}; each group adds its "key".
boost::json::object to_json(const Stats &stats);
// Several hosts (leases.hpp): the hosts of the workflow and who holds which lease.
boost::json::object cluster_json(const std::string &this_host, const std::vector<HostRecord> &hosts,
                                 const std::vector<LeaseRecord> &leases);

} // namespace vik::store
