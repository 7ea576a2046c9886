<?php
// Legitimate warehouse export page: reads request input but never evaluates it.
$station = isset($_GET['station']) ? intval($_GET['station']) : 0;
$rows = fetch_measurements($station);
header('Content-Type: text/csv');
foreach ($rows as $row) {
    echo implode(',', array_map('htmlspecialchars', $row)), "\n";
}
?>
