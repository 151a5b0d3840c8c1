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
    ["/v3/ec2"] = {                      -- v3 has no taskWithTags
        [""]             = "v3-container/docs-ec2-awsvpc-nginx-curl.json",
        ["/task"]         = "v3-task/docs-2018-ec2-awsvpc-nginx-no-az.json",
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

return M
