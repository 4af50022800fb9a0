/*
 * The entry points mpgit's Rust code calls into sha1dc (sha1.c and ubc_check.c, vendored
 * unmodified from Marc Stevens' and Dan Shumow's sha1collisiondetection, MIT licensed, see
 * LICENSE.txt). sha1.c is included rather than compiled on its own so that its static
 * recompression step is reachable here.
 *
 * Rust hashes blocks itself where the CPU has SHA instructions and asks this file only about
 * the rare blocks that meet a disturbance vector's unavoidable bit conditions (and, without
 * AVX-512, about the conditions); elsewhere it runs whole blocks through mpgit_sha1dc_blocks,
 * which is sha1dc's own block function.
 */
#include "sha1.c"

/* Recompresses the block for every disturbance vector in `mask` and reports whether one of
 * them ends in the same chaining value: the sign of a near-collision block, hence an attack. */
static int check_dvs(const uint32_t m1[80], uint32_t states[80][5], const uint32_t ihv_out[5], uint32_t mask)
{
	uint32_t m2[80], ihv2[5], ihvtmp[5];
	unsigned i, j;

	for (i = 0; sha1_dvs[i].dvType != 0; ++i) {
		if (!(mask & ((uint32_t)1 << sha1_dvs[i].maskb)))
			continue;
		for (j = 0; j < 80; ++j)
			m2[j] = m1[j] ^ sha1_dvs[i].dm[j];
		sha1_recompression_step(sha1_dvs[i].testt, ihv2, ihvtmp, m2, states[sha1_dvs[i].testt]);
		if (0 == ((ihvtmp[0] ^ ihv_out[0]) | (ihvtmp[1] ^ ihv_out[1]) | (ihvtmp[2] ^ ihv_out[2]) |
			  (ihvtmp[3] ^ ihv_out[3]) | (ihvtmp[4] ^ ihv_out[4])))
			return 1;
	}
	return 0;
}

/* Collision check of one block compressed elsewhere whose bit conditions `mask` were met:
 * `m1` is its expanded message, s58 and s65 the states before steps 58 and 65 (in sha1.c's
 * layout), ihv_out the chaining value after it. Returns 1 for a near-collision block. */
int mpgit_sha1dc_check_states(const uint32_t m1[80], const uint32_t s58[5], const uint32_t s65[5],
			      const uint32_t ihv_out[5], uint32_t mask)
{
	uint32_t states[80][5];

	memcpy(states[58], s58, sizeof(states[58]));
	memcpy(states[65], s65, sizeof(states[65]));
	return check_dvs(m1, states, ihv_out, mask);
}

/* The states before steps 58 and 65 of one block from a zero chaining value (tests compare
 * other ways of getting them with this). */
void mpgit_sha1dc_states(const unsigned char data[64], uint32_t s58[5], uint32_t s65[5])
{
	uint32_t ihv[5] = { 0, 0, 0, 0, 0 }, block[16], m1[80], states[80][5];
	memcpy(block, data, 64);
	sha1_compression_states(ihv, block, m1, states);
	memcpy(s58, states[58], sizeof(states[58]));
	memcpy(s65, states[65], sizeof(states[65]));
}

/* sha1dc's block function over `nblocks` whole blocks. Returns 1 when one of them is a
 * near-collision block (the chaining value is then SHA-1's, not sha1dc's "safe" one). */
int mpgit_sha1dc_blocks(uint32_t ihv[5], const unsigned char *data, size_t nblocks)
{
	uint32_t block[16], m1[80], states[80][5], mask[DVMASKSIZE];
	int found = 0;

	for (; nblocks; --nblocks, data += 64) {
		memcpy(block, data, 64);
		sha1_compression_states(ihv, block, m1, states);
		ubc_check(m1, mask);
		if (mask[0] && check_dvs(m1, states, ihv, mask[0]))
			found = 1;
	}
	return found;
}

/* The bit conditions alone, for a message expansion captured elsewhere (W[35..64] are read). */
uint32_t mpgit_sha1dc_ubc(const uint32_t W[80])
{
	uint32_t mask[DVMASKSIZE];
	ubc_check(W, mask);
	return mask[0];
}

/* The expanded message of one block, as sha1dc computes it (for tests of other expansions). */
void mpgit_sha1dc_expand(const unsigned char data[64], uint32_t W[80])
{
	uint32_t ihv[5] = { 0, 0, 0, 0, 0 }, block[16], states[80][5];
	memcpy(block, data, 64);
	sha1_compression_states(ihv, block, W, states);
}
