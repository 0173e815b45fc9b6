/*
 * mi-sha256.c - print the SHA-256 of each file named, like `sha256sum`,
 * through libmediaindex's public API only (mi_hash_file).  A benchmark
 * client for bench/hash-1g.sh; not installed.
 *
 *   mi-sha256 [-e] FILE...     (-e: print the hash engine first)
 */
#include <mediaindex.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int status = 0;

    for (int i = 1; i < argc; i++) {
        uint8_t hash[MI_HASH_SIZE];
        char hex[MI_HASH_HEX_LEN + 1];
        mi_status st;

        if (strcmp(argv[i], "-e") == 0) {
            printf("engine: %s\n", mi_hash_engine());
            continue;
        }
        st = mi_hash_file(hash, argv[i]);
        if (st != MI_OK) {
            fprintf(stderr, "mi-sha256: %s: %s\n", argv[i], mi_strerror(st));
            status = 1;
            continue;
        }
        mi_hash_to_hex(hex, hash);
        printf("%s  %s\n", hex, argv[i]);
    }
    return status;
}
