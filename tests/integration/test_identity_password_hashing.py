"""identity hashes passwords with argon2id at OWASP's parameters, and a hash stored with older
parameters still logs in and is stored again with today's (services/identity/README.md,
"Password hashing"); on the real database, through the HTTP API."""

from argon2 import PasswordHasher, extract_parameters

from tests.support.identity import PASSWORD, running_identity

# argon2-cffi's defaults, with which every account before issue 10 was hashed.
OLD_DEFAULTS = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)
GET_HASH = "SELECT password_hash FROM credentials WHERE user_id = $1"


async def test_a_new_hash_carries_owasp_parameters() -> None:
    async with running_identity() as identity:
        person = await identity.register()
        stored = await identity.runtime.pool.fetchval(GET_HASH, person.user_id)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored
    parameters = extract_parameters(stored)
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (19456, 2, 1)


async def test_an_old_hash_logs_in_and_is_upgraded_after_the_login() -> None:
    async with running_identity() as identity:
        person = await identity.register()
        pool = identity.runtime.pool
        old = OLD_DEFAULTS.hash(PASSWORD)
        await pool.execute("UPDATE credentials SET password_hash = $2 WHERE user_id = $1", person.user_id, old)

        wrong = await identity.client.post("/v1/sessions", json={"phone": person.phone, "password": "not-it-12345"})
        assert wrong.status_code == 401 and await pool.fetchval(GET_HASH, person.user_id) == old

        session = await identity.client.post("/v1/sessions", json={"phone": person.phone, "password": PASSWORD})
        assert session.status_code == 201, session.text
        upgraded = await pool.fetchval(GET_HASH, person.user_id)
        assert upgraded != old and upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), upgraded
        assert PasswordHasher().verify(upgraded, PASSWORD)

        again = await identity.client.post("/v1/sessions", json={"phone": person.phone, "password": PASSWORD})
        assert again.status_code == 201 and await pool.fetchval(GET_HASH, person.user_id) == upgraded


async def test_a_rehash_never_overwrites_a_password_reset_in_between() -> None:
    async with running_identity() as identity:
        person = await identity.register()
        pool = identity.runtime.pool
        old, reset = OLD_DEFAULTS.hash(PASSWORD), identity.service.hasher.hash("a-new-password-99")
        await pool.execute("UPDATE credentials SET password_hash = $2 WHERE user_id = $1", person.user_id, reset)
        await identity.service._rehash(person.user_id, old, PASSWORD)  # verified `old` before the reset
        assert await pool.fetchval(GET_HASH, person.user_id) == reset
