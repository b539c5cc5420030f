-- PostgreSQL twin of gateway/store/migrations/0007_agents.sql (INTEGER as BIGINT, REAL as DOUBLE
-- PRECISION, AUTOINCREMENT as identity; times stay ts() text). Keep the two in step.
-- The SIP endpoints an agent answers on ('PJSIP/agent1'): a call ringing one of them pops up
-- on the agent console of every user mapped to it. One user may have several endpoints, and
-- one endpoint several users (a shared desk phone).
CREATE TABLE agent_endpoints (
    user_id  TEXT NOT NULL REFERENCES staff_users(user_id),
    endpoint TEXT NOT NULL,                -- technology/resource, as agent_endpoint() names it
    PRIMARY KEY (user_id, endpoint)
);
