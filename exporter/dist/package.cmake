# The Debian package, made by CPack from the install rules (there is no debian/ folder):
#
#   cmake --workflow --preset package   ->  build/package/icmp-exporter_VERSION_ARCH.deb
#
# or `cpack -G DEB` in any build directory configured with CMAKE_INSTALL_PREFIX=/usr.
# tests/package/test_deb.sh installs, checks and purges it in a Debian 12 chroot.
#
# Included from the top-level CMakeLists.txt after every add_subdirectory(), so the
# conffiles that exporter/dist/ installs are known.

# Debian package names allow no "_": the package is icmp-exporter; the program, its unit
# (icmp_exporter.service) and its files keep the project's name.
set(CPACK_PACKAGE_NAME icmp-exporter)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "icmp_exporter maintainers <maintainers@users.noreply.r-seed-455b93c3.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Prometheus exporter that measures networks with ICMP echo")
# The extended description, as lines for the control file (CPack indents them).
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "icmp_exporter answers /probe?target=... as blackbox_exporter's ICMP prober\n"
    "does, and probes the static targets of its configuration on every /metrics\n"
    "scrape. A probe sends several echoes and reports loss, round-trip times from\n"
    "kernel time stamps, and decoded ICMP errors. It runs as a systemd service,\n"
    "icmp_exporter.service, with its flags in /etc/default/icmp_exporter and its\n"
    "configuration in /etc/prometheus/icmp_exporter.json.\n"
    ".\n"
    "The package also carries the echo engine as a C library (libicmp_core.a,\n"
    "core/icmp.h, pkg-config icmp_core) with its manual pages.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES TRUE)

set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Shared libraries from dpkg-shlibdeps (libmicrohttpd12, libcjson1, libgnutls30,
# libcrypt1, zlib1g, libc6); procps for the unit's ExecReload=/bin/kill.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS procps)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS prometheus)

get_property(icmpx_conffiles GLOBAL PROPERTY ICMPX_CONFFILES)
list(JOIN icmpx_conffiles "\n" icmpx_conffiles)
file(WRITE ${CMAKE_BINARY_DIR}/debian-control/conffiles "${icmpx_conffiles}\n")
foreach(script postinst prerm postrm)
    configure_file(${CMAKE_CURRENT_LIST_DIR}/${script} ${CMAKE_BINARY_DIR}/debian-control/${script}
        COPYONLY)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian-control/conffiles ${CMAKE_BINARY_DIR}/debian-control/postinst
    ${CMAKE_BINARY_DIR}/debian-control/prerm ${CMAKE_BINARY_DIR}/debian-control/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

# Debian wants the licence as /usr/share/doc/PACKAGE/copyright.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${CPACK_PACKAGE_NAME} RENAME copyright)

include(CPack)
