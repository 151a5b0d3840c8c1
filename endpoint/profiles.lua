-- What the test endpoint answers, as data. Paths are fixture files under
-- spec/fixtures, served byte for byte.

local M = {}

-- Task metadata endpoints (v4/v3) as ECS would answer them.
-- metadata[<base>][<path below the base>] = fixture. A path not listed is a
-- 404 whose body is a JSON string, like the agent's.
M.metadata = {
    ["/v4/fargate"] = {
        [""]             = "v4-container/docs-2020-fargate-query-metadata.json",
        ["/task"]         = "v4-task/docs-2020-fargate-query-metadata.json",
        ["/taskWithTags"] = "v4-task/docs-taskwithtags.json",
        ["/stats"]        = "v4-stats/docs-2020-fargate-query-metadata.json",
        ["/task/stats"]   = "v4-task-stats/docs-2020-fargate-query-metadata.json",
    },
    ["/v4/ec2"] = {
        [""]             = "v4-container/docs-ec2-awsvpc-curl.json",
        ["/task"]         = "v4-task/docs-ec2-awsvpc-curltest.json",
        ["/taskWithTags"] = "v4-task/docs-taskwithtags-errors.json",
        ["/stats"]        = "v4-stats/docs-ec2-awsvpc-curl.json",
        ["/task/stats"]   = "v4-task-stats/docs-ec2-awsvpc-curltest.json",
    },
    ["/v3/ec2"] = {
        [""]             = "v3-container/docs-ec2-awsvpc-nginx-curl.json",
        ["/task"]         = "v3-task/docs-2018-ec2-awsvpc-nginx-no-az.json",
        -- The agent serves taskWithTags on v3 too (v3.TaskWithTagsMetadataPath).
        ["/taskWithTags"] = "v4-task/docs-taskwithtags.json",
        ["/stats"]        = "v3-stats/ecs-agent-unix-test-stats.json",
        ["/task/stats"]   = "v4-task-stats/docs-ec2-awsvpc-curltest.json",
    },
}

-- Task metadata endpoint v2, under the link-local base (the endpoint's root).
-- /v2/metadata/<docker id> and /v2/stats/<docker id> are cut out of these.
M.v2 = {
    metadata = "v2-metadata/docs-task-ec2-awsvpc-nginx.json",
    stats    = "v2-stats/datadog-integrations-fargate-2017-task-stats.json",
}

-- Task IAM role credentials, under the link-local base.
M.credentials = {
    fixture = "credentials/aws-sdk-rust-ecs-v2-credentials-body.json",
    invalid = "credentials/readme-horey-v2-credentials-error-invalid-id.json",
    -- generated documents: seconds until Expiration
    fresh   = 3600,
    soon    = 30,
}

-- The generated credentials. The secrets are easy to grep for in logs.
M.generated_credentials = {
    RoleArn         = "arn:aws:iam::111122223333:role/ecsm-test-task-role",
    AccessKeyId     = "ASIAECSMTESTACCESSKEY",
    SecretAccessKey = "TEST-SECRET-do-not-log",
    Token           = "TEST-TOKEN-do-not-log",
}

-- AWS_CONTAINER_CREDENTIALS_FULL_URI: /creds/full wants exactly this header.
M.full_uri_authorization = "TEST-AUTH-do-not-log"

-- Task scale-in protection, $ECS_AGENT_URI = /agent/<profile>.
-- "default" keeps state (see routes.lua); the others answer GET and PUT alike.
M.protection_task_arn = "arn:aws:ecs:us-west-2:111122223333:task/my-cluster/1234567890abcdef0"
M.protection = {
    docs      = { 200, "task-protection/docs-get-protected.json" },
    -- ECS's own API answers AccessDeniedException with 400 and the agent
    -- passes the status through.
    denied    = { 400, "task-protection/docs-error-access-denied.json" },
    throttled = { 429, "task-protection/docs-error-throttling.json" },
    canceled  = { 504, "task-protection/docs-error-request-canceled.json" },
    failure   = { 200, "task-protection/docs-failure-task-not-valid.json" },
    notfound  = { 404, "task-protection/ecs-agent-test-task-not-found-404.json" },
    lookup500 = { 500, "task-protection/ecs-agent-test-task-lookup-500.json" },
}

-- What slow, flaky and redirect finally serve.
M.fault_document = "v4-task/docs-ec2-awsvpc-curltest.json"
M.fault_404 = "errors/ecs-agent-v4-task-404-unknown-endpoint-id.json"
M.redirect_path = "/each/v4-task/docs-ec2-awsvpc-curltest/task"

---------------------------------------------------------------------------
-- Newer agents (1.88 and later): Managed Instances daemon tasks, a task with
-- the newer fields, fault injection, EKS Pod Identity credentials.

-- A value of M.metadata may also be a cut out of a fixture: { fixture, path }
-- serves the bytes of the element at path (array indexes and member names).
local MI_TASKS = "v4-task/otel-collector-managed-instances-tasks-array-no-networks.json"
local MI_TASKS_STATS = "v4-task-stats/otel-collector-managed-instances-tasks-stats-array.json"
local MI_DOCKER_ID = "081d2c75d3a2419d95ab6f8979fb61fb-1547245599"

-- A daemon task on ECS Managed Instances: its own documents are the first
-- task of /tasks, and /tasks, /tasks/stats answer every daemon task's.
M.metadata["/v4/managed"] = {
    [""]            = { MI_TASKS, { 1, "Containers", 1 } },
    ["/task"]        = { MI_TASKS, { 1 } },
    ["/stats"]       = { MI_TASKS_STATS, { 1, MI_DOCKER_ID } },
    ["/task/stats"]  = { MI_TASKS_STATS, { 1 } },
    ["/tasks"]       = MI_TASKS,
    ["/tasks/stats"] = MI_TASKS_STATS,
}

-- A Fargate task whose documents have the newer fields (a derived fixture,
-- see spec/fixtures/SOURCES.md); its task has FaultInjectionEnabled.
local NEWER = "derived-ecs-exporter-fargate-newer-fields.json"
M.metadata["/v4/newer"] = {
    [""]            = "v4-container/" .. NEWER,
    ["/task"]        = "v4-task/" .. NEWER,
    ["/stats"]       = { "v4-task-stats/ecs-exporter-fargate.json",
                         { "bae32def0ab64f06818e8862e58f8d6d-4159844948" } },
    ["/task/stats"]  = "v4-task-stats/ecs-exporter-fargate.json",
}

-- Paths that exist only for Managed Instances daemon tasks: elsewhere the
-- agent's router answers them with Go's plain-text 404.
M.daemon_only = { ["/tasks"] = true, ["/tasks/stats"] = true }
M.plain_404 = "404 page not found\n"

-- v2 /metadataWithTags: the v2 task document with these two members of a
-- taskWithTags document spliced in before its closing brace.
M.v2.with_tags_from = "v4-task/docs-taskwithtags.json"

-- Fault injection, $ECS_AGENT_URI/fault/v1/<kind>/<action> (POST), per
-- agent profile (/agent/<profile>): see fault_injection.lua.
M.fault_injection = {
    -- the task has enableFaultInjection
    default  = { window = 5 },
    -- the same with a 0.2 s rate-limit window, so specs can walk through
    -- start, status and stop without waiting (the agent's is 5 s)
    quick    = { window = 0.2 },
    -- a task without enableFaultInjection: 400
    disabled = { window = 5, disabled = true },
    -- the agent cannot find the task: 404
    notask   = { window = 5, status = 404,
                 error = "unable to get task metadata for endpoint container ID" },
    -- its commands fail: 500
    broken   = { window = 0.2, status = 500, error = "internal error" },
    -- answers after ?ms= (default 2000), like a command near its 5 s limit
    slow     = { window = 0.2, delay = 2 },
}
M.fault_task_arn = "arn:aws:ecs:us-east-1:829490980523:task/prom-ecs-exporter-sandbox/"
    .. "bae32def0ab64f06818e8862e58f8d6d"

-- Credentials of newer agents and of the EKS Pod Identity agent.
M.pod_identity = {
    AccessKeyId     = "ASIAECSMTESTPODIDENTITY",
    SecretAccessKey = "TEST-POD-SECRET-do-not-log",
    Token           = "TEST-POD-TOKEN-do-not-log",
    AccountId       = "111122223333",
    -- the token /creds/pod-identity accepts until /_pod_token/<new> rotates it
    authorization   = "TEST-POD-AUTH-1-do-not-log",
}
-- /creds/text/<status>: plain-text error bodies, like Go's http.Error.
M.text_errors = {
    [400] = "Service account token cannot be empty",
    [403] = "Token is not valid for this pod",
    [429] = "Rate exceeded",
    [500] = "Internal server error",
    [502] = "Unable to reach the EKS Auth service",
    [503] = "Service unavailable",
}

return M
