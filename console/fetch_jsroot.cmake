# cmake -DNPM=npm -DVERSION=7.11.2 -DSHA512=<hex> -DWORK=<dir> -DOUT=<dir> -P fetch_jsroot.cmake
# Puts JSROOT's one-file build (jsroot.min.js) and its licence in OUT. The package comes from
# npm's registry with `npm pack` (kept in WORK, so a rebuild needs no network) and must match
# the pinned SHA-512, the registry's own integrity of that version.
foreach(v NPM VERSION SHA512 WORK OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "fetch_jsroot.cmake: -D${v}=... is missing")
  endif()
endforeach()

set(tgz "${WORK}/jsroot-${VERSION}.tgz")
set(have "")
if(EXISTS "${tgz}")
  file(SHA512 "${tgz}" have)
endif()
if(NOT have STREQUAL SHA512)
  file(MAKE_DIRECTORY "${WORK}")
  message(STATUS "npm pack jsroot@${VERSION}")
  execute_process(
    COMMAND "${NPM}" pack "jsroot@${VERSION}" --pack-destination "${WORK}" --silent
    RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0 OR NOT EXISTS "${tgz}")
    message(FATAL_ERROR "could not fetch jsroot@${VERSION} from npm (npm pack: ${rc}); the "
                        "console draws with it. Configure with -DHISTGUARD_CONSOLE=OFF to build "
                        "without the console's pages.")
  endif()
  file(SHA512 "${tgz}" have)
  if(NOT have STREQUAL SHA512)
    file(REMOVE "${tgz}")
    message(FATAL_ERROR "jsroot-${VERSION}.tgz from npm does not match its pinned SHA-512")
  endif()
endif()

set(unpack "${WORK}/jsroot-${VERSION}")
file(REMOVE_RECURSE "${unpack}")
file(ARCHIVE_EXTRACT INPUT "${tgz}" DESTINATION "${unpack}"
     PATTERNS package/build/jsroot.min.js package/LICENSE)
file(MAKE_DIRECTORY "${OUT}")
file(COPY_FILE "${unpack}/package/build/jsroot.min.js" "${OUT}/jsroot.min.js")
file(COPY_FILE "${unpack}/package/LICENSE" "${OUT}/LICENSE")
