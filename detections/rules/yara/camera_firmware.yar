/*
   citysoc YARA pack: tampered camera and NVR firmware.

   The camera operations center stages vendor firmware in one folder before pushing it to
   thousands of cameras. An image carrying Mirai/Gafgyt-family bot code, a telnetd that
   busybox starts with a fixed password, or a list of default credentials used for
   brute-forcing is the way IoT botnets spread; none belongs in a vendor image.
*/

rule citysoc_firmware_mirai_bot_strings
{
    meta:
        description = "ELF image with Mirai-family bot strings: watchdog handling plus attack and scanner markers, or the table-obfuscated credential/process strings"
        title = "Firmware with Mirai bot strings"
        title_vi = "Firmware chứa chuỗi của bot Mirai"
        description_vi = "Tệp ELF chứa chuỗi của họ bot Mirai: xử lý watchdog cùng dấu hiệu tấn công và quét, hoặc chuỗi thông tin đăng nhập/tiến trình đã làm rối theo bảng"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "critical"
        tags = "attack.execution attack.t1059.004 attack.impact attack.t1498 attack.lateral_movement attack.t1110.001"
        triage = "Stop the rollout of this image, compare its hash with the vendor's published one, and check which cameras already run it."
    strings:
        $wd1 = "/dev/watchdog" ascii
        $wd2 = "/dev/misc/watchdog" ascii
        $m1 = "POST /cdn-cgi/" ascii
        $m2 = "/bin/busybox MIRAI" ascii
        $m3 = "MIRAI: applet not found" ascii
        $m4 = "attack_udp_generic" ascii
        $m5 = "attack_tcp_syn" ascii
        $m6 = "scanner_init" ascii
        $m7 = "killer_kill_by_port" ascii
        $m8 = "/bin/busybox ECCHI" ascii
        $t1 = "LCOGQGPTGP" ascii
        $t2 = "QUKLEKLUKVJOG" ascii
        $t3 = "CFOKLKQVPCVMP" ascii
    condition:
        uint32(0) == 0x464c457f and
        ( (1 of ($wd*) and 2 of ($m*)) or 2 of ($t*) or 3 of ($m*) )
}

rule citysoc_firmware_gafgyt_bot_commands
{
    meta:
        description = "ELF image with Gafgyt/Bashlite IRC-style bot command handlers (HOLD/JUNK/UDP/TCP floods, telnet scanner, 'PING'/'PONG' C2 loop)"
        title = "Firmware with Gafgyt/Bashlite bot commands"
        title_vi = "Firmware chứa lệnh điều khiển của bot Gafgyt/Bashlite"
        description_vi = "Tệp ELF chứa các hàm xử lý lệnh bot kiểu IRC của Gafgyt/Bashlite (làm ngập HOLD/JUNK/UDP/TCP, quét telnet, vòng lặp C2 'PING'/'PONG')"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "critical"
        tags = "attack.command_and_control attack.t1071 attack.impact attack.t1498"
        triage = "Treat every camera flashed with this image as compromised; block the C2 addresses found in the image at the perimeter."
    strings:
        $c1 = "HOLD Flooding" ascii nocase
        $c2 = "JUNK Flooding" ascii nocase
        $c3 = "UDP Flooding" ascii nocase
        $c4 = "TCP Flooding" ascii nocase
        $c5 = "KILLATTK" ascii
        $c6 = "LOLNOGTFO" ascii
        $c7 = "[TELNET] SCANNER" ascii nocase
        $c8 = "GETLOCALIP" ascii
        $c9 = "PONG!" ascii
        $sh = "/bin/sh" ascii
    condition:
        uint32(0) == 0x464c457f and 3 of ($c*) and $sh
}

rule citysoc_firmware_busybox_telnetd_backdoor
{
    meta:
        description = "Firmware that starts a busybox telnetd bound to a shell at boot (telnetd -l /bin/sh, or with a fixed port), a classic camera backdoor"
        title = "Firmware starting a busybox telnetd backdoor"
        title_vi = "Firmware khởi động cửa hậu busybox telnetd"
        description_vi = "Firmware khởi động busybox telnetd gắn với shell ngay khi bật máy (telnetd -l /bin/sh, hoặc với cổng cố định), một cửa hậu kinh điển trên camera"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "high"
        tags = "attack.persistence attack.t1037.004 attack.initial_access attack.t1133"
        triage = "Vendor images sometimes ship a debug telnetd; confirm with the vendor, and block TCP 23 and the listed port to the camera VLANs regardless."
    strings:
        $t1 = /telnetd\s+(-p\s*\d{1,5}\s+)?-l\s*\/bin\/(ba)?sh/ ascii
        $t2 = /busybox\s+telnetd\s+(-[a-zA-Z]\s*\S+\s+)*-l\s*\/bin\/(ba)?sh/ ascii
        $t3 = /telnetd\s+-p\s*\d{1,5}\s+-l\s*\/bin\/login/ ascii
        $rc1 = "/etc/init.d/rcS" ascii
        $rc2 = "/etc/inittab" ascii
        $rc3 = "::sysinit:" ascii
        $rc4 = "::respawn:" ascii
    condition:
        filesize < 256MB and 1 of ($t*) and (1 of ($rc*) or uint32(0) == 0x464c457f)
}

rule citysoc_firmware_default_credential_list
{
    meta:
        description = "Binary or script carrying a list of IoT default credentials (camera/DVR vendor passwords such as xc3511, vizxv, 7ujMko0admin, hi3518) used by brute-forcing bots"
        title = "IoT default credential list in a file"
        title_vi = "Tệp chứa danh sách mật khẩu mặc định của thiết bị IoT"
        description_vi = "Tệp nhị phân hoặc script mang danh sách mật khẩu mặc định của thiết bị IoT (mật khẩu của hãng camera/DVR như xc3511, vizxv, 7ujMko0admin, hi3518) mà bot dò mật khẩu dùng"
        author = "citysoc security center"
        date = "2026-11-25"
        level = "high"
        tags = "attack.credential_access attack.t1110.001 attack.lateral_movement attack.t1078.001"
        triage = "A credential list inside a firmware image means the image scans for other devices; find which cameras run it and rotate their passwords."
    strings:
        $p1 = "xc3511" ascii
        $p2 = "vizxv" ascii
        $p3 = "7ujMko0admin" ascii
        $p4 = "7ujMko0vizxv" ascii
        $p5 = "hi3518" ascii
        $p6 = "jvbzd" ascii
        $p7 = "anko" ascii fullword
        $p8 = "Zte521" ascii
        $p9 = "juantech" ascii
        $p10 = "klv123" ascii
        $p11 = "dreambox" ascii
        $p12 = "ikwb" ascii fullword
        $p13 = "realtek" ascii fullword
        $p14 = "00000000" ascii fullword
    condition:
        filesize < 256MB and 5 of ($p*)
}
